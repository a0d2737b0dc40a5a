"""What a run across missions is made of, without any modelling (the web app imports this; the
modelling is shared.transfer, in the worker and the functions): the two classes every mission's
setup maps onto, the missions a request may name, and the quantities they share."""

from __future__ import annotations

from collections.abc import Sequence

from shared.catalog import BUILTINS
from shared.errors import DataError
from shared.vocabulary import match

SETUP = "planet_vs_fp"  # every mission's label setup onto the same two classes
POSITIVE, NEGATIVE = "PLANET", "FALSE POSITIVE"


def mission_names(train: object, test: object) -> tuple[list[str], str]:
    """The training missions and the test mission a request names; DataError for anything else."""
    if not isinstance(train, list) or not train or not all(t in BUILTINS for t in train):
        raise DataError(f"train: {train!r} must list built-in missions ({', '.join(BUILTINS)})")
    if test not in BUILTINS:
        raise DataError(f"test: {test!r} is not a built-in mission ({', '.join(BUILTINS)})")
    if test in train:
        raise DataError(f"test: {test!r} is also a training mission; test on a mission the model never saw")
    return list(dict.fromkeys(train)), str(test)


def quantities(train: Sequence[str], test: str) -> tuple[list[str], dict[str, str]]:
    """The shared quantities of the training missions and the test mission, and what is missing."""
    found = match([{m: BUILTINS[m].physical for m in train}, {test: BUILTINS[test].physical}])
    return list(found.shared), dict(found.missing)
