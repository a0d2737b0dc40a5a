from tests.browser import app_server, browser, page, port
from tests.gcs_emulator import gcs_emulator
from tests.nasa import koi, koi_features, koi_kinds

__all__ = ["app_server", "browser", "gcs_emulator", "koi", "koi_features", "koi_kinds", "page", "port"]
