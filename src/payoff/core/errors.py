"""The errors payoff raises, one tree.

    PayoffError
     ├── RecordError        a record is malformed: names the line (when known) and the field
     ├── CatalogError       a price override file is malformed, or a price cannot be resolved
     ├── StoreError         the ledger cannot be opened, migrated or written
     ├── SignatureError     a signed request's signature header is missing, malformed,
     │                      stale, from the future, or matches no secret
     └── BudgetExceeded     (SDK) an enforced task or customer budget was already exceeded
                            when a step was recorded; the step itself is recorded

Every error carries a message meant for the person who sent the input.
"""

from __future__ import annotations


class PayoffError(Exception):
    """Base of every error payoff raises on purpose."""


class RecordError(PayoffError):
    """A record is malformed. `field` names the offending field when one is to blame."""

    def __init__(self, reason: str, *, field: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.field = field
        self.line = line
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field `{self.field}`")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class CatalogError(PayoffError):
    """A price override file is malformed, or a price cannot be resolved."""


class StoreError(PayoffError):
    """The ledger cannot be opened, migrated or written."""


class SignatureError(PayoffError):
    """A signed request cannot be trusted; the message says why, never with a secret in it."""


class BudgetExceeded(PayoffError):
    """An enforced budget was exceeded before this step (the SDK's `Task.record` and `tool`).

    `budget` names it (`hidden_tokens`, `cost` or `customer_cost`); `limit` and `spent` are
    tokens or nano-USD, `spent` strictly above `limit`.
    """

    def __init__(self, task: str, budget: str, limit: int, spent: int) -> None:
        self.task = task
        self.budget = budget
        self.limit = limit
        self.spent = spent
        super().__init__(
            f"task {task!r}: {budget} budget exceeded ({spent} spent, limit {limit}; "
            f"{'nano-USD' if budget != 'hidden_tokens' else 'tokens'})"
        )
