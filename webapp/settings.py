"""The web app's settings, read once from the environment at start-up."""

from shared.settings import Settings

SETTINGS = Settings.from_env()
