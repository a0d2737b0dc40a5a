"""`python -m webapp`: serve the app on the embedded default (what `make run` starts)."""

import uvicorn

from webapp.settings import SETTINGS

if __name__ == "__main__":
    # uvicorn's own access log is off: webapp.logs writes one line per request (JSON in cloud mode)
    uvicorn.run(
        "webapp.app:create_app",
        factory=True,
        host=SETTINGS.host,
        port=SETTINGS.port,
        proxy_headers=True,
        access_log=False,
    )
