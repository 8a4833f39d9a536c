"""Optional parts of payoff, and the message that names the extra one of them needs.

`pip install payoff` gives the ledger, the CLI and the SDK. Serving (`payoff serve`,
`payoff.api`) needs the `server` extra; charts (`--chart`, the demo's charts) need the
`charts` extra; PDF invoices (`invoice export --format pdf`) the `pdf` extra. Used
without its extra, a feature says what to install instead of showing a traceback:

    with needs("server", "payoff serve"):
        import uvicorn
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# The top-level modules each extra installs (and payoff imports directly).
EXTRA_MODULES = {
    "server": frozenset({"fastapi", "starlette", "pydantic", "uvicorn", "opentelemetry", "google"}),
    "charts": frozenset({"matplotlib"}),
    "pdf": frozenset({"weasyprint"}),
}


class MissingExtra(ImportError):
    """A feature was used without the extra that installs what it imports."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the {extra} extra: pip install 'payoff[{extra}]'")


@contextmanager
def needs(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing module of `extra` into MissingExtra; any other import error stays."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in EXTRA_MODULES[extra]:
            raise MissingExtra(feature, extra) from exc
        raise
