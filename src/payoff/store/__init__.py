"""Ledger backends behind one protocol, and the migrations that shape them.

`open_store("./payoff.db")` or `open_store("sqlite:///path.db")` opens (creating and
migrating as needed) the embedded SQLite ledger.

The backends load on first use: SQLAlchemy takes longer to import than a short command
takes to run, and `payoff.store.protocol` (the role types every service names) needs none.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from payoff.store.opening import migrate, open_store
    from payoff.store.protocol import Store
    from payoff.store.sql import SqlStore
    from payoff.store.sqlite import SqliteStore

__all__ = ["SqlStore", "SqliteStore", "Store", "migrate", "open_store"]

_MODULE_OF = {
    "SqlStore": "payoff.store.sql",
    "SqliteStore": "payoff.store.sqlite",
    "Store": "payoff.store.protocol",
    "_alembic_config": "payoff.store.opening",
    "migrate": "payoff.store.opening",
    "open_store": "payoff.store.opening",
    "packaged_head": "payoff.store.opening",
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'payoff.store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
