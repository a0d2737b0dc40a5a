"""ROC and precision-recall curves as inline SVG: the numbers come from the train function,
the web app only scales them into a plot (no plotting library on the web side)."""

from typing import Any

SIZE = 240  # plot area in SVG units; axes and labels sit around it
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)  # labelled on both axes of every curve plot
COLORS = ("#7cc4ff", "#ffcf6e", "#6ee7a8", "#ff8a8a", "#c9a7ff", "#9aa6c7")


def _points(xs: list[float], ys: list[float]) -> str:
    return " ".join(f"{x * SIZE:.1f},{(1 - y) * SIZE:.1f}" for x, y in zip(xs, ys, strict=True))


def curve_plots(metrics: dict[str, Any]) -> dict[str, Any]:
    """For each kind (roc, pr): the polylines with their labels and colours, and axis names."""
    plots = {}
    for kind, x_label, y_label in (
        ("roc", "False positive rate", "True positive rate"),
        ("pr", "Recall", "Precision"),
    ):
        lines = [
            {
                "label": c["label"],
                "points": _points(c["x"], c["y"]),
                "area": c["area"],
                "color": COLORS[i % len(COLORS)],
            }
            for i, c in enumerate(metrics.get("curves", {}).get(kind, []))
        ]
        plots[kind] = {"lines": lines, "x_label": x_label, "y_label": y_label, "size": SIZE}
    return plots
