"""A label setup an uploader builds class by class: merge classes into a positive and a negative
group, keep some as they are, leave some out, or set some aside to be scored after training (as
the built-in tables' "score the candidates" setups do). Plain logic, no data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.errors import DataError

OWN, POSITIVE, NEGATIVE, ASIDE, DROP = "own", "positive", "negative", "aside", "drop"
ROLES = {
    OWN: "its own class",
    POSITIVE: "positive (merged)",
    NEGATIVE: "negative (merged)",
    ASIDE: "set aside, score after training",
    DROP: "leave out",
}
CUSTOM_KEY = "custom"


@dataclass(frozen=True)
class CustomSetup:
    mapping: dict[str, str | None]
    positive_class: str | None
    score_classes: tuple[str, ...]
    classes: tuple[str, ...]  # the classes the model learns


def group_name(classes: Sequence[str]) -> str:
    """A merged group's class name: its members, e.g. 'CANDIDATE + CONFIRMED'."""
    return " + ".join(sorted(classes))


def setup_from_roles(roles: Mapping[str, str]) -> CustomSetup:
    """The mapping for each raw class's role; a DataError names what is wrong."""
    unknown = {r for r in roles.values() if r not in ROLES}
    if unknown:
        raise DataError(f"unknown class role {sorted(unknown)[0]!r}; choose one of " + ", ".join(ROLES))
    positives = [c for c, r in roles.items() if r == POSITIVE]
    negatives = [c for c, r in roles.items() if r == NEGATIVE]
    names = {POSITIVE: group_name(positives), NEGATIVE: group_name(negatives)}
    mapping: dict[str, str | None] = {}
    for raw, role in roles.items():
        mapping[raw] = raw if role == OWN else names.get(role)
    learned = tuple(sorted({m for m in mapping.values() if m is not None}))
    if len(learned) < 2:
        raise DataError(
            f"this setup leaves {len(learned)} class{'' if len(learned) == 1 else 'es'} to learn"
            f"{' (' + learned[0] + ')' if learned else ''}; a classifier needs at least two: "
            "make some classes positive and others negative, or keep them as their own classes"
        )
    if negatives and not positives:
        raise DataError("a negative group needs a positive one: mark the classes to find as positive")
    positive = names[POSITIVE] if positives else None
    aside = tuple(c for c, r in roles.items() if r == ASIDE)
    if aside and positive is None:
        raise DataError(
            "classes set aside are ranked by their probability of the positive class: "
            "mark the classes to find as positive first"
        )
    return CustomSetup(mapping, positive, aside, learned)


def roles_from_spec(
    classes: Sequence[str],
    mapping: Mapping[str, str | None] | None,
    positive_class: str | None,
    score_classes: Sequence[str],
    saved: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each raw class's role in a saved setup: as saved when it was built class by class (a
    one-class negative group and a class of its own map alike), else read off its mapping."""
    if saved:
        return {c: saved.get(c, OWN) for c in classes}
    learned = {(mapping or {}).get(c, c) for c in classes} - {None}
    two_groups = positive_class is not None and len(learned) == 2  # the other class is negative
    roles = {}
    for c in classes:
        mapped = (mapping or {}).get(c, c)
        if c in score_classes:
            roles[c] = ASIDE
        elif mapped is None:
            roles[c] = DROP
        elif mapped == c and mapped != positive_class and not two_groups:
            roles[c] = OWN
        elif mapped == positive_class:
            roles[c] = POSITIVE
        else:
            roles[c] = NEGATIVE
    return roles
