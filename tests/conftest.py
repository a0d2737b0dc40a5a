import os

# Under pytest-xdist (`make test` runs two workers on this 2-core machine) every worker, and every
# process it starts, fits with one OpenMP thread: two workers with two spinning OpenMP threads
# each made a boosting fit four times slower than one thread each (measured: 2.0 s vs 0.68 s).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

from hypothesis import settings

from tests.browser import app_server, browser, page, port
from tests.gcs_emulator import gcs_emulator
from tests.nasa import k2, koi, koi_features, koi_kinds, tess

# Property tests draw the same examples on every run (CI included): a failure is reproducible,
# never a flake. No example database is written into the checkout.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile("ci")

__all__ = [
    "app_server", "browser", "gcs_emulator", "k2", "koi", "koi_features", "koi_kinds", "page", "port", "tess",
]  # fmt: skip
