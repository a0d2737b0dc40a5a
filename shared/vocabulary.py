"""A common physical vocabulary across the missions: what each quantity is, its unit here, and
how a mission's own column converts to it. The columns themselves are named per mission in
shared/catalog.py (``Builtin.physical``); the units below were read from the archive's column
definitions (the `# COLUMN` lines of each export): every mission states these quantities in the
same units, so each conversion is the identity, and a magnitude is comparable only within its
band."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Quantity:
    key: str
    label: str
    unit: str


QUANTITIES = {
    q.key: q
    for q in (
        Quantity("period", "orbital period", "days"),
        Quantity("duration", "transit duration", "hours"),
        Quantity("depth", "transit depth", "ppm"),
        Quantity("planet_radius", "planet radius", "Earth radii"),
        Quantity("equilibrium_temperature", "equilibrium temperature", "K"),
        Quantity("insolation", "insolation", "Earth flux"),
        Quantity("stellar_teff", "stellar effective temperature", "K"),
        Quantity("stellar_logg", "stellar surface gravity", "log10(cm/s²)"),
        Quantity("stellar_radius", "stellar radius", "solar radii"),
        Quantity("magnitude", "brightness", "mag, in the mission's band"),
    )
}


@dataclass(frozen=True)
class Column:
    """A mission's column for a quantity: ``value * factor`` is in the quantity's unit."""

    name: str
    unit: str  # as the archive states it
    factor: float = 1.0
    band: str | None = None  # magnitudes only


@dataclass(frozen=True)
class Matching:
    """Which quantities two sets of missions share, and which one side lacks (with why)."""

    shared: tuple[str, ...]
    missing: Mapping[str, str] = field(default_factory=dict)


def physical_frame(frame: pd.DataFrame, columns: Mapping[str, Column], quantities: list[str]) -> pd.DataFrame:
    """The mission's rows in the common vocabulary, converted to its units."""
    out = {}
    for key in quantities:
        column = columns[key]
        values = pd.to_numeric(frame[column.name], errors="coerce").to_numpy(dtype=float)
        out[key] = values * column.factor
    return pd.DataFrame(out, index=frame.index).replace([np.inf, -np.inf], np.nan)


def match(sides: list[Mapping[str, Mapping[str, Column]]]) -> Matching:
    """The quantities every mission on every side has; a magnitude only if all share its band.
    ``sides``: for each side (training, test), mission name → its columns."""
    shared, missing = [], {}
    missions = {name: columns for side in sides for name, columns in side.items()}
    for key, quantity in QUANTITIES.items():
        lacking = sorted(name for name, columns in missions.items() if key not in columns)
        if lacking:
            missing[key] = f"{quantity.label}: not in {' or '.join(lacking)}"
            continue
        bands = sorted({columns[key].band or "" for columns in missions.values()})
        if len(bands) > 1:
            missing[key] = f"{quantity.label}: bands differ ({', '.join(bands)})"
            continue
        shared.append(key)
    return Matching(tuple(shared), missing)
