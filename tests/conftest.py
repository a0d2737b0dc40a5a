import os

# OpenMP threads sleep instead of spinning while they wait: on a small shared machine (CI, two
# cores running the web app, the worker and the tests at once) spinning threads starve the
# others and a 20 s evaluation can take minutes. Set before scikit-learn loads its runtime;
# subprocesses (functions, workers) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hypothesis import settings

from tests.browser import app_server, browser, page, port
from tests.gcs_emulator import gcs_emulator
from tests.nasa import koi, koi_features, koi_kinds

# Property tests draw the same examples on every run (CI included): a failure is reproducible,
# never a flake. No example database is written into the checkout.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile("ci")

__all__ = ["app_server", "browser", "gcs_emulator", "koi", "koi_features", "koi_kinds", "page", "port"]
