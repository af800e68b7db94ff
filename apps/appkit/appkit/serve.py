"""The entry point of an app's image: `python -m appkit.serve [--app-dir DIR] [APP]` serves the factory
`APP.app:create_app` with uvicorn on 0.0.0.0:8000, without uvicorn's access log (the kit logs every
request itself) and with a 30 s graceful shutdown. APP defaults to the `APP` environment variable,
which the kit's Dockerfile (`apps/appkit/app.Dockerfile`) sets from its APP build argument."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

APP_VARIABLE = "APP"
"""The environment variable naming the app's package when no argument does."""
HOST = "0.0.0.0"  # the container's port is published by the engine
PORT = 8000
GRACEFUL_SHUTDOWN_S = 30
"""Seconds in-flight requests get to finish after SIGTERM."""


def factory(app: str) -> str:
    """The import string of the app's factory: `chatbot` → `chatbot.app:create_app`."""
    return f"{app}.app:create_app"


def uvicorn_options(app_dir: str | None = None) -> dict[str, Any]:
    """What `uvicorn.run` gets besides the factory (the image's former uvicorn command line)."""
    return {
        "factory": True,
        "app_dir": app_dir,
        "host": HOST,
        "port": PORT,
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the app named by the argument or by `APP`; a usage error (exit 2) when neither names one."""
    parser = argparse.ArgumentParser(
        prog="python -m appkit.serve", description="Serve APP.app:create_app with uvicorn."
    )
    parser.add_argument("app", nargs="?", help=f"the app's package (default: ${APP_VARIABLE})")
    parser.add_argument("--app-dir", help="folder to import the app from (put first on sys.path)")
    args = parser.parse_args(argv)
    app: str = args.app or os.environ.get(APP_VARIABLE, "")
    if not app.isidentifier():
        parser.error(f"name the app's package (an argument or ${APP_VARIABLE}), not {app!r}")

    import uvicorn  # only here: the kit's other modules never need it

    uvicorn.run(factory(app), **uvicorn_options(args.app_dir))


if __name__ == "__main__":
    main()
