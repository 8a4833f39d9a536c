"""The public API is pinned: changing it is a decision, made here."""

from __future__ import annotations

import importlib
import re

import payoff
from payoff.api.errors import STATUS_BY_ERROR, status_of
from payoff.core import errors


def test_exported_names_are_pinned_and_sorted() -> None:
    assert payoff.__all__ == sorted(payoff.__all__)
    assert payoff.__all__ == [
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
    for name in payoff.__all__:
        assert hasattr(payoff, name)


# Every module that defines an error, so that PayoffError.__subclasses__() sees them all.
ERROR_MODULES = (
    "payoff.api.errors",
    "payoff.charts",
    "payoff.core.canonical",
    "payoff.core.derivation",
    "payoff.core.outcome_prices",
    "payoff.core.invoicing",
    "payoff.core.outcomes",
    "payoff.core.printable",
    "payoff.core.scenarios",
    "payoff.invoice_print",
    "payoff.plan_files",
    "payoff.sdk.spool",
    "payoff.core.evidence",
    "payoff.contract_files",
    "payoff.service.access",
    "payoff.service.advice",
    "payoff.service.contracts",
    "payoff.service.evidence",
    "payoff.service.judges",
    "payoff.service.attestations",
    "payoff.service.plans",
    "payoff.service.economics",
    "payoff.service.http_records",
    "payoff.service.invoices",
    "payoff.service.outcomes",
    "payoff.service.reservations",
    "payoff.service.writer",
    "payoff.sources.otlp",
    "payoff.store.billing",
    "payoff.store.contracts",
)
TREE_LINE = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)(?:.*\(also (?P<also>\w+)\))?")


def drawn_tree() -> dict[str, tuple[str, ...]]:
    """Each class drawn in the errors module's docstring -> its bases, as drawn.

    A class's first base is the class it is drawn under; a second base is written
    `(also X)` on its line.
    """
    assert errors.__doc__ is not None
    drawn: dict[str, tuple[str, ...]] = {}
    parents = ["PayoffError"]  # parents[depth] is the class drawn at that depth
    for line in errors.__doc__.splitlines():
        match = TREE_LINE.match(line.removeprefix("    "))
        if match is None:
            continue
        depth = len(match["indent"]) // 5 + 1
        del parents[depth:]
        also = (match["also"],) if match["also"] else ()
        drawn[match["name"]] = (parents[depth - 1], *also)
        parents.append(match["name"])
    return drawn


def defined_tree() -> dict[str, tuple[str, ...]]:
    """Each subclass of PayoffError that payoff defines -> the names of its bases."""
    for module in ERROR_MODULES:
        importlib.import_module(module)
    found: dict[str, tuple[str, ...]] = {}
    waiting = [payoff.PayoffError]
    while waiting:
        for error in waiting.pop().__subclasses__():
            if error.__module__.startswith("payoff."):
                found[error.__name__] = tuple(base.__name__ for base in error.__bases__)
                waiting.append(error)
    return found


def test_errors_form_one_tree() -> None:
    """The tree drawn in payoff.core.errors is the tree the code defines, every class in it."""
    assert drawn_tree() == defined_tree()
    for name in ("RecordError", "CatalogError", "StoreError", "BudgetExceeded"):
        assert issubclass(getattr(payoff, name), payoff.PayoffError)


def test_each_error_is_answered_as_the_category_it_is_drawn_under() -> None:
    """Over HTTP, an error's status is its drawn category's, whatever its second base."""
    defined_tree()  # imports every module that defines an error
    for error in _walk(payoff.PayoffError)[1:]:
        if not error.__module__.startswith("payoff."):
            continue
        category = error
        while category.__bases__[0] is not payoff.PayoffError:
            category = category.__bases__[0]
        made = error.__new__(error)  # no __init__: some errors take several arguments
        assert status_of(made) == STATUS_BY_ERROR[category], error.__name__


def _walk(error: type[payoff.PayoffError]) -> list[type[payoff.PayoffError]]:
    return [error, *(sub for child in error.__subclasses__() for sub in _walk(child))]
