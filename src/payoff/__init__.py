"""payoff: meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes.

The public API is the names in `__all__`; everything else may change between releases.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

from payoff.core.errors import (
    BudgetExceeded,
    CatalogError,
    PayoffError,
    RecordError,
    StoreError,
)

if TYPE_CHECKING:
    from payoff.catalog import Catalog, load_overrides
    from payoff.core.costing import PriceTable, TokenRates
    from payoff.core.money import format_nanousd, round_usd_to_nanousd
    from payoff.core.tokens import TokenCounts, normalise_usage
    from payoff.problems import Problem
    from payoff.records import decode_record, record_from_dict
    from payoff.sdk import Budget, Meter, Remaining, Task
    from payoff.sdk.evidence import Commitment, commit_evidence, evidence_digest
    from payoff.service import IngestReport, ingest_lines, list_tasks, numbered_lines
    from payoff.sources.providers import usage_from_response
    from payoff.store import open_store

    __version__: str

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Catalog",
    "CatalogError",
    "Commitment",
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
    "commit_evidence",
    "decode_record",
    "evidence_digest",
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

# Each name loads on first use: the `payoff` command, an application that only sends records
# to a server and one that only reads its ledger each pay for what they use. The price
# catalog (genai-prices), the store (SQLAlchemy, Alembic) and the ingest pipeline are each
# slower to import than a short command takes to run.
_ON_FIRST_USE = {
    "Budget": "payoff.sdk",
    "Catalog": "payoff.catalog",
    "Commitment": "payoff.sdk.evidence",
    "IngestReport": "payoff.service",
    "Meter": "payoff.sdk",
    "PriceTable": "payoff.core.costing",
    "Problem": "payoff.problems",
    "Remaining": "payoff.sdk",
    "Task": "payoff.sdk",
    "TokenCounts": "payoff.core.tokens",
    "TokenRates": "payoff.core.costing",
    "commit_evidence": "payoff.sdk.evidence",
    "decode_record": "payoff.records",
    "evidence_digest": "payoff.sdk.evidence",
    "format_nanousd": "payoff.core.money",
    "ingest_lines": "payoff.service",
    "list_tasks": "payoff.service",
    "load_overrides": "payoff.catalog",
    "normalise_usage": "payoff.core.tokens",
    "numbered_lines": "payoff.service",
    "open_store": "payoff.store",
    "record_from_dict": "payoff.records",
    "round_usd_to_nanousd": "payoff.core.money",
    "usage_from_response": "payoff.sources.providers",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import version

        value: object = version("payoff")
    elif name in _ON_FIRST_USE:
        value = getattr(_import_module(_ON_FIRST_USE[name]), name)
    else:
        raise AttributeError(f"module 'payoff' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
