"""payoff: meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes.

The public API is the names in `__all__`; everything else may change between releases.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from payoff.catalog import Catalog, load_overrides
from payoff.core.costing import PriceTable, TokenRates
from payoff.core.errors import (
    BudgetExceeded,
    CatalogError,
    PayoffError,
    RecordError,
    StoreError,
)
from payoff.core.money import format_nanousd, round_usd_to_nanousd
from payoff.core.tokens import TokenCounts, normalise_usage
from payoff.problems import Problem
from payoff.records import decode_record, record_from_dict
from payoff.sdk import Budget, Meter, Remaining, Task
from payoff.sources.providers import usage_from_response

if TYPE_CHECKING:
    from payoff.service import IngestReport, ingest_lines, list_tasks, numbered_lines
    from payoff.store import open_store

__version__ = _version("payoff")

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Catalog",
    "CatalogError",
    "IngestReport",
    "Meter",
    "PayoffError",
    "PriceTable",
    "Problem",
    "RecordError",
    "Remaining",
    "StoreError",
    "Task",
    "TokenCounts",
    "TokenRates",
    "__version__",
    "decode_record",
    "format_nanousd",
    "ingest_lines",
    "list_tasks",
    "load_overrides",
    "normalise_usage",
    "numbered_lines",
    "open_store",
    "record_from_dict",
    "round_usd_to_nanousd",
    "usage_from_response",
]

# The ledger's side (the store, with SQLAlchemy and Alembic, and the ingest pipeline) loads
# on first use: an application that only sends records to a server never pays for it.
_ON_FIRST_USE = {
    "IngestReport": "payoff.service",
    "ingest_lines": "payoff.service",
    "list_tasks": "payoff.service",
    "numbered_lines": "payoff.service",
    "open_store": "payoff.store",
}


def __getattr__(name: str) -> object:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module 'payoff' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE})
