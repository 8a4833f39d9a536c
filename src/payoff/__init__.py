"""payoff: meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes.

The public API is the names in `__all__`; everything else may change between releases.
"""

from __future__ import annotations

from importlib.metadata import version as _version

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
from payoff.records import decode_record, record_from_dict
from payoff.sdk import Budget, Meter, Remaining, Task
from payoff.service import IngestReport, Problem, ingest_lines, list_tasks, numbered_lines
from payoff.sources.providers import usage_from_response
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
