"""The numbers an evaluation plan and a search take, as plain data next to the code that uses
them (like the model parameters in shared.params): one source for the form's label, help and
range, the web handler's parsing and the spec's and the job's validation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NumberOption:
    name: str
    label: str
    whole: bool  # a whole number (else any number in the range)
    low: float
    high: float
    default: float
    help: str = ""

    @property
    def range_text(self) -> str:
        if self.whole:
            return f"{int(self.low)} to {int(self.high)}"
        return f"{self.low:g} to {self.high:g}"

    def allows(self, value: object) -> bool:
        """A number of the right kind within the range (never a bool; NaN fails the range)."""
        kinds = int if self.whole else (int, float)
        return not isinstance(value, bool) and isinstance(value, kinds) and self.low <= value <= self.high


FOLDS = NumberOption("folds", "Folds", True, 2, 20, 5, "used by cross-validation")
TEST_SIZE = NumberOption("test_size", "Test share", False, 0.05, 0.5, 0.2, "used by holdout")
SEED = NumberOption("seed", "Random seed", True, 0, 2**32 - 1, 42, "the same seed gives the same splits")
SEARCH_CANDIDATES = NumberOption(
    "candidates", "Candidates", True, 8, 200, 27, "settings tried in the first round"
)
SEARCH_MINUTES = NumberOption(
    "minutes", "Time budget (minutes)", True, 1, 60, 10, "the search stops on time with what it has"
)
EVALUATION_OPTIONS = {o.name: o for o in (FOLDS, TEST_SIZE, SEED)}
SEARCH_OPTIONS = {o.name: o for o in (SEARCH_CANDIDATES, SEARCH_MINUTES)}
