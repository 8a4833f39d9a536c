"""The errors payoff raises, one tree.

Every error derives from `PayoffError` through one category, and the category says what
kind of refusal it is; the HTTP API answers each category with one status (the table is
`payoff.api.errors.STATUS_BY_ERROR`). A class with a second base keeps that base for
callers that catch it (`ValueError`, or the error of its own module).

    PayoffError
     ├── NotFound           404  what the request names does not exist (or is not the
     │    │                      caller's to see)
     │    ├── PlanNotFound             (also BillingError)   no such plan or version
     │    ├── ContractNotFound         (also ContractRequestError)  no such contract or version
     │    ├── InvoiceNotFound          (also BillingError)   no such invoice
     │    ├── OutcomeNotFound          (also OutcomeError)   no such outcome
     │    ├── AttestedOutcomeNotFound  (also AttestationRefused)  a verdict names none
     │    ├── CustomerNotFound         (also AccessError)    no such customer
     │    ├── KeyNotFound              (also AccessError)    no such API key
     │    ├── TaskNotFound                                   no such task
     │    ├── ReservationNotFound                            no such reservation
     │    └── ActionNotFound    (HTTP) no such action on an invoice
     ├── Refused            422  the request is understood and the rules refuse it
     │    ├── RecordError       a record is malformed: names the line (when known) and the field
     │    ├── CatalogError      a price override file is malformed, or a price cannot be resolved
     │    │    └── RateError    (also ValueError) a price's rates are negative, not finite,
     │    │                     incomplete, or its tiers out of order
     │    ├── AmountError       (also ValueError) a USD amount is not an exact non-negative
     │    │                     decimal of at most 9 places
     │    ├── PeriodError       (also ValueError) a period is not YYYY-MM, or out of range
     │    ├── PlanError         a plan file is malformed
     │    ├── ContractError     an outcome contract file is malformed
     │    ├── ContractRequestError  a contract request is refused (a version that is no number)
     │    ├── StoreError        the ledger cannot be opened or migrated, or refuses a write
     │    ├── BudgetExceeded    (SDK) an enforced task or customer budget was already
     │    │                     exceeded when a step was recorded; the step itself is recorded
     │    ├── LifecycleError    (also ValueError) an outcome's lifecycle forbids a verdict
     │    ├── TransitionError   (also ValueError) an invoice's lifecycle forbids an action
     │    ├── ScenarioError     (also ValueError) a what-if scenario is malformed
     │    ├── ChartError        (also ValueError) a chart cannot be written where asked
     │    ├── EvidenceError     (also ValueError) evidence with no canonical form, or a
     │    │                     malformed salt
     │    ├── DocumentError     (also ValueError) a stored invoice or credit note does not
     │    │    │                hold together (a field missing or unknown, totals that differ),
     │    │    │                nor a line of a bundle
     │    │    └── DerivationError  an invoice cannot be re-derived: a plan version or an
     │    │         │           invoice it names is not among its rows
     │    │         └── NotDerivable  rated from inputs no ledger row holds (a compute
     │    │                     charge's GPU figures): checked by its chain link
     │    ├── BillingError      a plan, subscription, quote or invoice request is refused
     │    │    └── InvoiceRunIncomplete  an invoice run could not rate some customers (each
     │    │                     named); the others' drafts were saved
     │    ├── OutcomeError      a verdict or an integrity report is refused
     │    │    ├── JudgeFailed       a contract's judge failed, answered no verdict or timed
     │    │    │                     out: the claim stays pending
     │    │    └── EvidenceMismatch  an opened evidence does not match its commitment: refused
     │    │                          and flagged
     │    ├── AccessError       a key or secret request is refused
     │    ├── CreditError       (also ValueError) a credit grant, rollover or wallet request
     │    │                     is refused
     │    ├── LimitError        (also ValueError) a spend limit is negative, or soft above hard
     │    ├── EconomicsError    a report or simulation request is refused
     │    ├── AdviceError       a budget advice request is refused (no tasks, a bad period)
     │    ├── PriceError        an outcome price budget advice cannot weigh (tiers, a currency
     │    │                     other than USD)
     │    ├── IssuerError       the issuer's settings (PAYOFF_ISSUER) are malformed
     │    └── AttestationRefused  a signed verdict is malformed or out of lifecycle order
     ├── Conflict           409  the id was used before, with another body or already received
     │    ├── PlanConflict             (also StoreError)    a plan version with another body
     │    ├── ContractConflict         (also StoreError)    a contract version with another body
     │    ├── CreditConflict           (also StoreError)    a credit entry id with other content
     │    ├── ReservationRefused       more than is available, or the task holds another
     │    └── AttestationReplayed      (also AttestationRefused)  the verdict's id was received
     ├── Unauthorized       401  a signature or a key cannot be trusted
     │    ├── SignatureError    a signed request's signature header is missing, malformed,
     │    │                     stale, from the future, or matches no secret
     │    ├── AttestationUnsigned      (also AttestationRefused)  its signature failed
     │    └── KeyRefused        (HTTP) the bearer key is missing, unknown or revoked
     ├── Forbidden          403  the key is valid, and its scope does not allow the action
     │    ├── ScopeRefused      (HTTP) an admin key needed, or an ingest key reading
     │    └── CustomerSignalRefused  a customer key sent other records than signals about
     │                          its own tasks and outcomes
     ├── Unreadable         400  a body cannot be read as what it says it is
     │    ├── BodyError         a request body is not records at all
     │    ├── OtlpError         a body is not a valid OTLP trace export
     │    ├── BodyUnreadable    (HTTP) a body's encoding is broken (gzip, UTF-8) or cut short,
     │    │                     or its JSON nests past the bound
     │    └── CursorError       (HTTP) a page cursor this server did not give out
     ├── Unsupported        415  a body in a format payoff does not read
     │    ├── UnsupportedContentType   (also OtlpError)     not protobuf or JSON
     │    ├── PdfUnavailable    PDF needs the Pango system library, missing here
     │    └── EncodingUnsupported      (HTTP) a content-encoding other than gzip or deflate
     ├── TooSlow            408  a request did not arrive within its time
     │    └── BodyTimeout       (HTTP) a body not received within the body timeout
     ├── TooLarge           413  more than a request may hold
     │    ├── TooManyRecords    more records (or spans) in one request than the server accepts
     │    └── BodyTooLarge      (HTTP) a body beyond its bound, as sent or once inflated
     └── Busy               503  a resource is taken for now: retry shortly
          ├── LedgerBusy        another connection held the ledger's write lock for longer
          │                     than the busy timeout
          ├── WriterBusy        the ledger writer's queue is full
          ├── WriterClosed      the ledger writer is closed: the server is stopping
          └── SpoolLocked       (SDK) another process holds the spool

Classes marked (HTTP) are refusals only the HTTP API makes; they live in `payoff.api.errors`.
Every error carries a message meant for the person who sent the input.
"""

from __future__ import annotations


class PayoffError(Exception):
    """Base of every error payoff raises on purpose."""


class NotFound(PayoffError):
    """What the request names does not exist, or the caller may not see it (the same answer)."""


class Refused(PayoffError):
    """The request is understood, and the rules refuse it; the message says which rule."""


class Conflict(PayoffError):
    """An id was used before: with another body, or the same record was already received."""


class Unauthorized(PayoffError):
    """A signature or a key cannot be trusted."""


class Forbidden(PayoffError):
    """The caller is known, and what it may do does not include this (a key's scope)."""


class Unreadable(PayoffError):
    """A body cannot be read as what it says it is (not JSON, not a trace export...)."""


class Unsupported(PayoffError):
    """A body in a format payoff does not read."""


class TooLarge(PayoffError):
    """More than one request may hold."""


class TooSlow(PayoffError):
    """A request did not arrive within its time (a slow or stalled client)."""


class Busy(PayoffError):
    """A resource is taken for now; the same request may succeed shortly."""


class RecordError(Refused):
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


class CatalogError(Refused):
    """A price override file is malformed, or a price cannot be resolved."""


class RateError(CatalogError, ValueError):
    """A price's rates are negative, not finite or incomplete, or its tiers are out of order."""


class AmountError(Refused, ValueError):
    """A USD amount is not an exact non-negative decimal of at most 9 places (nano-USD)."""


class PeriodError(Refused, ValueError):
    """A period label is not YYYY-MM, or names a year outside the range payoff dates."""


class StoreError(Refused):
    """The ledger cannot be opened or migrated, or refuses a write that breaks its rules."""


class LedgerBusy(Busy):
    """Another connection held the ledger's write lock for longer than the busy timeout.

    Nothing of the refused transaction was written; the same command or request may
    succeed when tried again.
    """


class SignatureError(Unauthorized):
    """A signed request cannot be trusted; the message says why, never with a secret in it."""


class TaskNotFound(NotFound):
    """No task with that id (or none the caller may read)."""


class BudgetExceeded(Refused):
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
