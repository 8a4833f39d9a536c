"""Server settings, from arguments or (for uvicorn's worker processes) the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from payoff.core.errors import PayoffError
from payoff.service.span_timing import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_SETTLE_S, MIN_IDLE_TIMEOUT_S
from payoff.store.busy import BUSY_TIMEOUT_S, busy_timeout_from

DEFAULT_MAX_RECORDS = 10_000
"""Records accepted in one POST /v1/events request (and spans in one /v1/traces export)."""
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Bytes accepted in one request body."""
DEFAULT_HEADER_TIMEOUT_S = 10.0
"""Seconds a request's headers may take to arrive, from its first byte (then 408)."""
DEFAULT_BODY_TIMEOUT_S = 60.0
"""Seconds a request's body may take to arrive, once its headers have (then 408): 32 MiB
at a little over 0.5 MB/s."""
MAX_TIMEOUT_S = 3600.0
DEFAULT_MAX_CONNECTIONS = 512
"""Connections a server process serves at once (then 503). Below the usual limit of 1,024
open files per process, which also holds the ledger's files and the builder's pipes."""
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
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    """A conversation or an unfinished trace that received no span for this long is closed
    or judged as it is."""
    settle_s: float = DEFAULT_SETTLE_S
    """A trace that received no span for this long, its root arrived, is judged."""
    busy_timeout_s: float = BUSY_TIMEOUT_S
    """How long a write waits for another process's lock on the ledger (then 503)."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """Read by the HTTP protocol (payoff.api.protocol), not by the application."""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.idle_timeout_s < MIN_IDLE_TIMEOUT_S:
            raise PayoffError(f"the idle timeout must be at least {MIN_IDLE_TIMEOUT_S} second")
        if not 0 <= self.settle_s < self.idle_timeout_s:  # NaN fails too
            raise PayoffError(
                f"the settle time is {self.settle_s!r} s; give seconds from 0, below the idle "
                f"timeout ({self.idle_timeout_s} s)"
            )
        if self.max_records < 1:
            raise PayoffError("max records per request must be at least 1")
        if self.max_body_bytes < 1024:
            raise PayoffError("max body bytes must be at least 1024")
        for name, seconds in (("header", self.header_timeout_s), ("body", self.body_timeout_s)):
            if not 0 < seconds <= MAX_TIMEOUT_S:  # NaN fails too
                raise PayoffError(
                    f"the {name} timeout is {seconds!r} s; give seconds above 0, "
                    f"at most {MAX_TIMEOUT_S:g}"
                )

    def to_env(self) -> dict[str, str]:
        env = {
            "PAYOFF_DB": self.db,
            "PAYOFF_MAX_RECORDS": str(self.max_records),
            "PAYOFF_MAX_BODY_BYTES": str(self.max_body_bytes),
            "PAYOFF_IDLE_TIMEOUT": str(self.idle_timeout_s),
            "PAYOFF_SETTLE_SECONDS": repr(self.settle_s),
            "PAYOFF_BUSY_TIMEOUT": repr(self.busy_timeout_s),
            "PAYOFF_HEADER_TIMEOUT": repr(self.header_timeout_s),
            "PAYOFF_BODY_TIMEOUT": repr(self.body_timeout_s),
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
            idle_timeout_s=int(os.environ.get("PAYOFF_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT_S)),
            settle_s=_seconds("PAYOFF_SETTLE_SECONDS", DEFAULT_SETTLE_S),
            busy_timeout_s=busy_timeout_from(os.environ.get("PAYOFF_BUSY_TIMEOUT")),
            header_timeout_s=_seconds("PAYOFF_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT_S),
            body_timeout_s=_seconds("PAYOFF_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT_S),
        )


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable, "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise PayoffError(f"{variable} is {text!r}: give seconds") from None
