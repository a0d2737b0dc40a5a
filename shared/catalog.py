"""The built-in NASA Exoplanet Archive tables: plain data, with the science written down.

Each dataset names its archive table, target, host-star group column, the label setups a
researcher can pick, and the columns to leave out by default with the reason for each.
Sources: the archive's column documentation and the exports themselves (shared/snapshots/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import DataError
from shared.vocabulary import Column


@dataclass(frozen=True)
class LabelSetup:
    key: str
    name: str
    explanation: str
    mapping: Mapping[str, str | None] | None  # None: the raw classes
    positive_class: str | None = None
    score_classes: tuple[str, ...] = ()  # raw classes left out of training, then ranked

    def class_counts(self, raw_counts: Mapping[str, int]) -> dict[str, int]:
        """Row counts per class after the mapping (dropped classes left out)."""
        counts: dict[str, int] = {}
        for raw, count in raw_counts.items():
            mapped = self.mapping.get(raw, raw) if self.mapping else raw
            if mapped is not None:
                counts[mapped] = counts.get(mapped, 0) + count
        return counts


@dataclass(frozen=True)
class KnownColumn:
    reason: str
    leakage: bool  # True: gives the label away; False: an identifier or bookkeeping


@dataclass(frozen=True)
class Builtin:
    id: str
    name: str
    description: str
    table: str  # the archive's TAP table name
    target: str
    group_column: str
    env_var: str
    setups: tuple[LabelSetup, ...]
    known_columns: Mapping[str, KnownColumn]
    default_rows_only: bool = False  # K2: one row per object (default_flag == 1)
    key_columns: tuple[str, ...] = field(default=())  # identify a row in ranked outputs
    physical: Mapping[str, Column] = field(default_factory=dict)  # shared.vocabulary's quantities
    position: tuple[str, str] = ("ra", "dec")  # degrees: to tell one star across missions

    def setup(self, key: str) -> LabelSetup:
        for setup in self.setups:
            if setup.key == key:
                return setup
        raise DataError(
            f"{key!r} is not a label setup of {self.name}; choose one of "
            + ", ".join(s.key for s in self.setups)
        )

    @property
    def default_setup(self) -> LabelSetup:
        return self.setups[1]  # the binary "planet-like vs false positive"


def _raw(classes: str) -> LabelSetup:
    return LabelSetup(
        "raw", "All dispositions", f"Learn the archive's own classes ({classes}) as they are.", None
    )


_IDENTIFIER = "an identifier: it names the row, it does not measure it"
_HOST_GROUP = "the host star's id: used to keep a star's planets on one side of every split"
_DATE = "a date of bookkeeping (when the row was made or updated), not physics"
_TEXT_COORDINATE = "a coordinate written as text; the numeric column holds the same value"
_REFERENCE = "a literature reference: which paper a value came from, not physics"

KEPLER = Builtin(
    id="kepler",
    name="Kepler Objects of Interest",
    description="Transit signals from the Kepler mission's four years of photometry, each vetted "
    "as a confirmed planet, a candidate, or a false positive (KOI cumulative table).",
    table="cumulative",
    target="koi_disposition",
    group_column="kepid",
    env_var="KEPLER_URI",
    setups=(
        _raw("CONFIRMED, CANDIDATE, FALSE POSITIVE"),
        LabelSetup(
            "planet_vs_fp",
            "Planet-like vs false positive",
            "CONFIRMED and CANDIDATE together against FALSE POSITIVE: is this signal a planet?",
            {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"},
            "PLANET",
        ),
        LabelSetup(
            "confirmed_vs_fp",
            "Confirmed vs false positive, then score the candidates",
            "Train only on settled cases (CONFIRMED against FALSE POSITIVE), then rank every "
            "CANDIDATE by its planet probability.",
            {"CANDIDATE": None},
            "CONFIRMED",
            ("CANDIDATE",),
        ),
    ),
    known_columns={
        "kepid": KnownColumn(_HOST_GROUP, False),
        "kepoi_name": KnownColumn(_IDENTIFIER, False),
        "kepler_name": KnownColumn("set only for confirmed planets, so it gives the label away", True),
        "koi_pdisposition": KnownColumn(
            "the disposition from Kepler data alone; the archive copies it "
            "into koi_disposition for every row not confirmed",
            True,
        ),
        "koi_score": KnownColumn(
            "the Robovetter's disposition score: a summary of the very vetting decision the label comes from",
            True,
        ),
        **{
            f"koi_fpflag_{flag}": KnownColumn(
                f"a Robovetter false-positive flag ({what}): FALSE POSITIVE means at least one flag is set",
                True,
            )
            for flag, what in (
                ("nt", "not transit-like"),
                ("ss", "stellar eclipse"),
                ("co", "centroid offset"),
                ("ec", "ephemeris match"),
            )
        },
        "koi_tce_delivname": KnownColumn("the pipeline delivery the signal came from: bookkeeping", False),
    },
    key_columns=("kepoi_name", "kepid", "kepler_name"),
    physical={
        "period": Column("koi_period", "days"),
        "duration": Column("koi_duration", "hrs"),
        "depth": Column("koi_depth", "ppm"),
        "planet_radius": Column("koi_prad", "Earth radii"),
        "equilibrium_temperature": Column("koi_teq", "K"),
        "insolation": Column("koi_insol", "Earth flux"),
        "stellar_teff": Column("koi_steff", "K"),
        "stellar_logg": Column("koi_slogg", "log10(cm/s**2)"),
        "stellar_radius": Column("koi_srad", "Solar radii"),
        "magnitude": Column("koi_kepmag", "mag", band="Kepler"),
    },
)

TESS = Builtin(
    id="tess",
    name="TESS Objects of Interest",
    description="Transit signals from the TESS all-sky survey with the TESS Follow-up Observing "
    "Program's disposition (TOI table).",
    table="toi",
    target="tfopwg_disp",
    group_column="tid",
    env_var="TESS_URI",
    setups=(
        _raw("PC, FP, CP, KP, APC, FA"),
        LabelSetup(
            "planet_vs_fp",
            "Planet-like vs false positive",
            "Confirmed (CP), known (KP) planets and candidates (PC) against false positives (FP) "
            "and false alarms (FA); ambiguous candidates (APC) are left out.",
            {
                "CP": "PLANET",
                "KP": "PLANET",
                "PC": "PLANET",
                "FP": "FALSE POSITIVE",
                "FA": "FALSE POSITIVE",
                "APC": None,
            },
            "PLANET",
        ),
        LabelSetup(
            "confirmed_vs_fp",
            "Confirmed vs false positive, then score the candidates",
            "Train only on settled cases (CP and KP against FP and FA), then rank every "
            "candidate (PC and APC) by its planet probability.",
            {
                "CP": "CONFIRMED",
                "KP": "CONFIRMED",
                "FP": "FALSE POSITIVE",
                "FA": "FALSE POSITIVE",
                "PC": None,
                "APC": None,
            },
            "CONFIRMED",
            ("PC", "APC"),
        ),
    ),
    known_columns={
        "toi": KnownColumn(_IDENTIFIER, False),
        "tid": KnownColumn(_HOST_GROUP, False),
        "toi_created": KnownColumn(_DATE, False),
        "rowupdate": KnownColumn(_DATE, False),
        "rastr": KnownColumn(_TEXT_COORDINATE, False),
        "decstr": KnownColumn(_TEXT_COORDINATE, False),
    },
    key_columns=("toi", "tid"),
    physical={
        "period": Column("pl_orbper", "days"),
        "duration": Column("pl_trandurh", "hours"),
        "depth": Column("pl_trandep", "ppm"),
        "planet_radius": Column("pl_rade", "R_Earth"),
        "equilibrium_temperature": Column("pl_eqt", "K"),
        "insolation": Column("pl_insol", "Earth flux"),
        "stellar_teff": Column("st_teff", "K"),
        "stellar_logg": Column("st_logg", "cm/s**2 (log10)"),
        "stellar_radius": Column("st_rad", "R_Sun"),
        "magnitude": Column("st_tmag", "mag", band="TESS"),
    },
)

K2 = Builtin(
    id="k2",
    name="K2 Planets and Candidates",
    description="Planets and candidates from Kepler's extended K2 mission, one row per object "
    "(the archive's default parameter set; k2pandc table).",
    table="k2pandc",
    target="disposition",
    group_column="hostname",
    env_var="K2_URI",
    default_rows_only=True,
    setups=(
        _raw("CONFIRMED, CANDIDATE, FALSE POSITIVE, REFUTED"),
        LabelSetup(
            "planet_vs_fp",
            "Planet-like vs false positive",
            "CONFIRMED and CANDIDATE together against FALSE POSITIVE and REFUTED.",
            {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET", "REFUTED": "FALSE POSITIVE"},
            "PLANET",
        ),
        LabelSetup(
            "confirmed_vs_fp",
            "Confirmed vs false positive, then score the candidates",
            "Train only on settled cases (CONFIRMED against FALSE POSITIVE and REFUTED), then "
            "rank every CANDIDATE by its planet probability.",
            {"CANDIDATE": None, "REFUTED": "FALSE POSITIVE"},
            "CONFIRMED",
            ("CANDIDATE",),
        ),
    ),
    known_columns={
        "pl_name": KnownColumn(
            "the object's name: confirmed planets carry 'K2-nnn' names, candidates "
            "'EPIC ...' names, so it gives the label away",
            True,
        ),
        "hostname": KnownColumn(
            "the host's name ('K2-nnn' for confirmed systems): gives the label away; used to group splits",
            True,
        ),
        "default_flag": KnownColumn("marks the archive's default parameter set: bookkeeping", False),
        "disp_refname": KnownColumn("the reference of the disposition itself", True),
        "soltype": KnownColumn(
            "'Published Confirmed' or 'Published Candidate': the label in other words", True
        ),
        "sy_pnum": KnownColumn(
            "counts confirmed planets in the system (mean 1.91 for CONFIRMED, 0 for FALSE POSITIVE)", True
        ),
        "disc_year": KnownColumn("discovery year: set when a planet is published", True),
        "pl_controv_flag": KnownColumn("marks disputed planets: a vetting outcome", True),
        "pl_refname": KnownColumn(_REFERENCE + "; confirmed planets have papers", True),
        "pl_pubdate": KnownColumn("publication date of the planet's parameters", True),
        "releasedate": KnownColumn("archive release date of the row", True),
        "rowupdate": KnownColumn(_DATE, True),
        **{
            name: KnownColumn("planet mass: measured almost only for confirmed planets", True)
            for name in (
                "pl_bmasse",
                "pl_bmasseerr1",
                "pl_bmasseerr2",
                "pl_bmasselim",
                "pl_bmassj",
                "pl_bmassjerr1",
                "pl_bmassjerr2",
                "pl_bmassjlim",
                "pl_bmassprov",
            )
        },
        "st_refname": KnownColumn(_REFERENCE, False),
        "sy_refname": KnownColumn(_REFERENCE, False),
        "rastr": KnownColumn(_TEXT_COORDINATE, False),
        "decstr": KnownColumn(_TEXT_COORDINATE, False),
    },
    key_columns=("pl_name", "hostname"),
    # the k2pandc export carries no transit duration or depth columns
    physical={
        "period": Column("pl_orbper", "days"),
        "planet_radius": Column("pl_rade", "Earth Radius"),
        "equilibrium_temperature": Column("pl_eqt", "K"),
        "insolation": Column("pl_insol", "Earth Flux"),
        "stellar_teff": Column("st_teff", "K"),
        "stellar_logg": Column("st_logg", "log10(cm/s**2)"),
        "stellar_radius": Column("st_rad", "Solar Radius"),
        "magnitude": Column("sy_vmag", "mag", band="V (Johnson)"),
    },
)

BUILTINS: dict[str, Builtin] = {d.id: d for d in (KEPLER, K2, TESS)}


def builtin(dataset_id: str) -> Builtin:
    try:
        return BUILTINS[dataset_id]
    except KeyError:
        raise DataError(f"{dataset_id!r} is not a built-in dataset") from None
