"""`python -m webapp`: serve the app on the embedded default (what `make run` starts)."""

import uvicorn

from webapp.settings import SETTINGS

if __name__ == "__main__":
    uvicorn.run(
        "webapp.app:create_app", factory=True, host=SETTINGS.host, port=SETTINGS.port, proxy_headers=True
    )
