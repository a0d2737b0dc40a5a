"""Label setups built class by class on an upload: merge, keep, leave out, set aside."""

import re

import pytest

from shared.errors import DataError
from shared.label_roles import ASIDE, DROP, NEGATIVE, OWN, POSITIVE, roles_from_spec, setup_from_roles

CLASSES = ["CONFIRMED", "CANDIDATE", "FALSE POSITIVE", "REFUTED"]


@pytest.mark.parametrize(
    ("roles", "learned", "positive", "aside"),
    [
        (
            {"CONFIRMED": POSITIVE, "CANDIDATE": POSITIVE, "FALSE POSITIVE": NEGATIVE, "REFUTED": NEGATIVE},
            ("CANDIDATE + CONFIRMED", "FALSE POSITIVE + REFUTED"),
            "CANDIDATE + CONFIRMED",
            (),
        ),
        (
            {"CONFIRMED": POSITIVE, "CANDIDATE": ASIDE, "FALSE POSITIVE": NEGATIVE, "REFUTED": DROP},
            ("CONFIRMED", "FALSE POSITIVE"),
            "CONFIRMED",
            ("CANDIDATE",),
        ),
        (
            {"CONFIRMED": OWN, "CANDIDATE": OWN, "FALSE POSITIVE": OWN, "REFUTED": DROP},
            ("CANDIDATE", "CONFIRMED", "FALSE POSITIVE"),
            None,
            (),
        ),
        (
            {"CONFIRMED": POSITIVE, "CANDIDATE": POSITIVE, "FALSE POSITIVE": OWN, "REFUTED": OWN},
            ("CANDIDATE + CONFIRMED", "FALSE POSITIVE", "REFUTED"),
            "CANDIDATE + CONFIRMED",
            (),
        ),
    ],
)
def test_roles_make_a_setup_and_round_trip(roles, learned, positive, aside):
    setup = setup_from_roles(roles)
    assert setup.classes == learned
    assert setup.positive_class == positive
    assert setup.score_classes == aside
    assert roles_from_spec(CLASSES, setup.mapping, setup.positive_class, setup.score_classes) == roles


@pytest.mark.parametrize(
    ("roles", "match"),
    [
        ({"A": DROP, "B": DROP}, "leaves 0 classes to learn"),
        ({"A": POSITIVE, "B": POSITIVE}, "leaves 1 class to learn (A + B)"),
        ({"A": NEGATIVE, "B": OWN}, "a negative group needs a positive one"),
        ({"A": OWN, "B": OWN, "C": ASIDE}, "mark the classes to find as positive first"),
        ({"A": "maybe", "B": OWN}, "unknown class role 'maybe'"),
    ],
)
def test_impossible_setups_say_why(roles, match):
    with pytest.raises(DataError, match=re.escape(match)):
        setup_from_roles(roles)
