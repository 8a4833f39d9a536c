"""Server settings, from arguments or (for uvicorn's worker processes) the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from payoff.core.errors import PayoffError
from payoff.store.busy import BUSY_TIMEOUT_S, busy_timeout_from

DEFAULT_MAX_RECORDS = 10_000
"""Records accepted in one POST /v1/events request (and spans in one /v1/traces export)."""
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Bytes accepted in one request body."""
MAX_PAGE = 1_000
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class ServerConfig:
    db: str = "./payoff.db"
    prices: Path | None = None
    max_records: int = DEFAULT_MAX_RECORDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    builders: int | None = None
    """Builder processes that decode large requests (default: one when a core is spare)."""
    busy_timeout_s: float = BUSY_TIMEOUT_S
    """How long a write waits for another process's lock on the ledger (then 503)."""

    def __post_init__(self) -> None:
        if self.max_records < 1:
            raise PayoffError("max records per request must be at least 1")
        if self.max_body_bytes < 1024:
            raise PayoffError("max body bytes must be at least 1024")

    def to_env(self) -> dict[str, str]:
        env = {
            "PAYOFF_DB": self.db,
            "PAYOFF_MAX_RECORDS": str(self.max_records),
            "PAYOFF_MAX_BODY_BYTES": str(self.max_body_bytes),
            "PAYOFF_BUSY_TIMEOUT": repr(self.busy_timeout_s),
        }
        if self.prices is not None:
            env["PAYOFF_PRICES"] = str(self.prices)
        if self.builders is not None:
            env["PAYOFF_BUILDERS"] = str(self.builders)
        return env

    @classmethod
    def from_env(cls) -> ServerConfig:
        prices = os.environ.get("PAYOFF_PRICES")
        return cls(
            db=os.environ.get("PAYOFF_DB", "./payoff.db"),
            prices=Path(prices) if prices else None,
            max_records=int(os.environ.get("PAYOFF_MAX_RECORDS", DEFAULT_MAX_RECORDS)),
            max_body_bytes=int(os.environ.get("PAYOFF_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            builders=int(builders) if (builders := os.environ.get("PAYOFF_BUILDERS")) else None,
            busy_timeout_s=busy_timeout_from(os.environ.get("PAYOFF_BUSY_TIMEOUT")),
        )
