"""The web app's settings, read once from the environment at start-up."""

from shared.settings import CLOUD, Settings
from webapp.security import check_access_token

SETTINGS = Settings.from_env()
# here as well as in create_app: `python -m webapp` stops before uvicorn starts, naming the variable
check_access_token(SETTINGS.access_token, cloud=SETTINGS.mode == CLOUD)
