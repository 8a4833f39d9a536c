"""The public API is pinned: changing it is a decision, made here."""

from __future__ import annotations

import payoff


def test_exported_names_are_pinned_and_sorted() -> None:
    assert payoff.__all__ == sorted(payoff.__all__)
    assert payoff.__all__ == [
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
    for name in payoff.__all__:
        assert hasattr(payoff, name)


def test_errors_form_one_tree() -> None:
    for error in (
        payoff.RecordError,
        payoff.CatalogError,
        payoff.StoreError,
        payoff.BudgetExceeded,
    ):
        assert issubclass(error, payoff.PayoffError)
