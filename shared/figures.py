"""Evaluation figures as SVG, drawn with matplotlib where the model is evaluated (the train
function or the local worker), stored with the run and copied into the bundle.

Text stays text (``svg.fonttype = none``) so the files are small, searchable and accessible;
ids and metadata are fixed so the same numbers give the same bytes.
"""

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

TITLES = {
    "roc": "ROC curve",
    "pr": "Precision-recall curve",
    "confusion": "Confusion matrix (counts)",
    "confusion_normalized": "Confusion matrix (share of each true class)",
    "calibration": "Reliability diagram",
    "importance": "Permutation importance",
    "shap": "SHAP summary",
}
TOP_FEATURES = 15
_RC = {"svg.fonttype": "none", "svg.hashsalt": "mission-control", "font.size": 9}


def _svg(draw: Callable[[Any], None], size: tuple[float, float] = (5.0, 4.0)) -> bytes:
    import matplotlib
    from matplotlib.figure import Figure  # the object API: no pyplot state, safe in threads

    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.add_subplot())
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


def _curves(curves: list[dict[str, Any]], kind: str) -> bytes:
    def draw(ax: Any) -> None:
        for curve in curves:
            name = "AUC" if kind == "roc" else "AP"
            ax.plot(curve["x"], curve["y"], label=f"{curve['label']} ({name} {curve['area']:.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
            ax.set_xlabel("False positive rate")
            ax.set_ylabel("True positive rate (recall)")
        else:
            for curve in curves[:1] if len(curves) == 1 else []:
                ax.axhline(curve["base"], linestyle=":", color="grey", label="chance (class share)")
            ax.set_xlabel("Recall")
            ax.set_ylabel("Precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(TITLES[kind] + " (out-of-fold)")
        ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7)

    return _svg(draw)


def _confusion(labels: list[str], matrix: list[list[int]], normalized: bool) -> bytes:
    counts = np.asarray(matrix, dtype=float)
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalized else counts

    def draw(ax: Any) -> None:
        ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalized else max(values.max(), 1))
        ticks = range(len(labels))
        ax.set_xticks(ticks, labels, rotation=30, ha="right")
        ax.set_yticks(ticks, labels)
        middle = values.max() / 2 if values.size else 0
        for (i, j), v in np.ndenumerate(values):
            text = f"{v:.2f}" if normalized else f"{int(v):,}"
            ax.text(j, i, text, ha="center", va="center", color="white" if v > middle else "black")
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(TITLES["confusion_normalized" if normalized else "confusion"])

    return _svg(draw, (4.5 + 0.3 * len(labels), 4.0 + 0.3 * len(labels)))


def reliability(truth: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[list[float]]:
    """[mean predicted, observed share, rows] per probability bin."""
    edges = np.minimum((proba * bins).astype(int), bins - 1)
    return [
        [float(proba[edges == b].mean()), float(truth[edges == b].mean()), int((edges == b).sum())]
        for b in range(bins)
        if (edges == b).any()
    ]


def _calibration(series: Mapping[str, list[list[float]]], what: str) -> bytes:
    def draw(ax: Any) -> None:
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
        for name, points in series.items():
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"Mean predicted probability ({what})")
        ax.set_ylabel("Observed share")
        ax.set_title(TITLES["calibration"] + " (out-of-fold)")
        ax.legend(loc="upper left", fontsize=7)

    return _svg(draw)


def _bars(rows: list[dict[str, Any]], value: str, spread: str | None, xlabel: str, title: str) -> bytes:
    top = rows[:TOP_FEATURES][::-1]

    def draw(ax: Any) -> None:
        values = [r[value] for r in top]
        errors = [r[spread] for r in top] if spread else None
        ax.barh([r["feature"] for r in top], values, xerr=errors, color="#3a6ea5", ecolor="#333")
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Feature")
        ax.set_title(title)

    return _svg(draw, (6.0, 1.2 + 0.28 * len(top)))


def evaluation_figures(metrics: Mapping[str, Any], oof: Any = None) -> dict[str, bytes]:
    """Every figure the evaluation's numbers support, by name (see TITLES)."""
    figures: dict[str, bytes] = {}
    curves = metrics.get("curves") or {}
    for kind in ("roc", "pr"):
        if curves.get(kind):
            figures[kind] = _curves(curves[kind], kind)
    confusion = metrics.get("confusion_matrix") or {}
    if confusion.get("matrix"):
        labels, matrix = confusion["labels"], confusion["matrix"]
        figures["confusion"] = _confusion(labels, matrix, normalized=False)
        figures["confusion_normalized"] = _confusion(labels, matrix, normalized=True)
    calibration = _reliability_series(metrics, oof)
    if calibration:
        figures["calibration"] = _calibration(*calibration)
    importance = [r for r in metrics.get("importance") or [] if np.isfinite(r["mean"])]
    if importance:
        score = "ROC-AUC" if metrics.get("positive_class") is not None else "balanced accuracy"
        figures["importance"] = _bars(
            importance,
            "mean",
            "std",
            f"Drop in {score} when the feature is shuffled (mean ± std over held-out splits)",
            TITLES["importance"],
        )
    return figures


def _reliability_series(metrics: Mapping[str, Any], oof: Any) -> tuple[dict[str, Any], str] | None:
    """Before/after calibration if the run calibrated; otherwise the out-of-fold probabilities:
    of the positive class for two classes, of the most probable class (confidence) otherwise."""
    report, positive = metrics.get("calibration"), metrics.get("positive_class")
    if report and report.get("reliability_before"):
        return {
            "before calibration": report["reliability_before"],
            f"after ({report['method']})": report["reliability_after"],
        }, f"class {positive}"
    if oof is None or "true" not in oof:
        return None
    classes = metrics["classes"]
    proba = oof[[f"proba_{c}" for c in classes]].to_numpy(dtype=float)
    truth = oof["true"].astype(str).to_numpy()
    if positive is not None:
        column = classes.index(positive)
        return {"model": reliability(truth == positive, proba[:, column])}, f"class {positive}"
    top = proba.argmax(axis=1)
    hits = np.asarray(classes, dtype=object)[top] == truth
    return {"model": reliability(hits, proba.max(axis=1))}, "most probable class"


def shap_figure(summary: Mapping[str, Any]) -> bytes:
    """Mean |SHAP value| per feature over a sample of training rows."""
    return _bars(
        summary["features"],
        "mean_abs",
        None,
        f"Mean |SHAP value| ({summary['units']}) over {summary['rows']:,} training rows",
        TITLES["shap"],
    )
