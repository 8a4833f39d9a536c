"""The HTTP API: FastAPI routes that parse, call one service function, and format.

`create_app(ServerConfig(...))` builds the application; `payoff serve` runs it on uvicorn.
"""

from payoff.api.app import create_app, create_app_from_env
from payoff.api.config import ServerConfig

__all__ = ["ServerConfig", "create_app", "create_app_from_env"]
