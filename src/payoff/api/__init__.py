"""The HTTP API: FastAPI routes that parse, call one service function, and format.

`create_app(ServerConfig(...))` builds the application; `payoff serve` runs it on uvicorn.
The application and its framework are imported on first use, so that commands which never
serve (an ingest of millions of records) do not carry them in memory.
"""

from __future__ import annotations

from typing import Any

from payoff.api.config import ServerConfig
from payoff.extras import needs

__all__ = ["ServerConfig", "create_app", "create_app_from_env"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "create_app_from_env"):
        with needs("server", "payoff.api"):
            from payoff.api import app

        return getattr(app, name)
    raise AttributeError(f"module 'payoff.api' has no attribute {name!r}")
