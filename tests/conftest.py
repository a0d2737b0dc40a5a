from tests.gcs_emulator import gcs_emulator
from tests.nasa import koi, koi_features, koi_kinds

__all__ = ["gcs_emulator", "koi", "koi_features", "koi_kinds"]
from tests.browser import app_server, browser, page, port  # noqa: F401
