"""Outcome contracts: what one unit of AI work is, and the rule that says when it counts.

A contract is a value; `(id, version)` names it forever, as for plans. It names the outcome
type its claims carry, its unit in words (singular and plural, for invoices), the evidence
it requires (field names, never their content), and its verification rule:

    confirm       the customer accepts or rejects a claim
    assume_after  a claim is deemed accepted after this long with no follow-up
    follow_up     signals that hold a claim not yet accepted, and reverse an accepted one
                  within the warranty
    inactivity    nothing is decided automatically until the task has been quiet this long
    judge         a verifier (a local command or an HTTPS endpoint) accepts or rejects
    audit         a sampled share of claims waits for an auditor
    warranty      how long a verified outcome can still be reversed

`core.contract_rules` applies the rule to a claim's verdicts and signals as of a time.
Validation returns errors naming the field at fault; nothing here reads a file or a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from payoff.core.periods import US_PER_DAY, US_PER_SECOND
from payoff.core.versions import MAX_VERSION

DURATION_UNITS_US = {
    "s": US_PER_SECOND,
    "m": 60 * US_PER_SECOND,
    "h": 3600 * US_PER_SECOND,
    "d": US_PER_DAY,
}
DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
"""A duration as a contract writes it: a positive whole number and a unit (`24h`, `90d`)."""
MAX_RULE_DAYS = 365
"""Every window of a rule is at most a year: billing looks back that far for verdicts."""
MAX_RULE_US = MAX_RULE_DAYS * US_PER_DAY
MAX_JUDGE_TIMEOUT_US = 300 * US_PER_SECOND
DEFAULT_JUDGE_TIMEOUT = "30s"
MAX_NAME_CHARS = 255
MAX_UNIT_CHARS = 100
MAX_EVIDENCE_FIELDS = 64
MAX_FOLLOW_UPS = 64
EVIDENCE_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def parse_duration(text: str) -> int:
    """A duration's length in microseconds; ValueError names what a duration looks like."""
    match = DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"a duration like 24h, 72h or 90d (a positive whole number and s, m, h or d), "
            f"got {text!r}"
        )
    return int(match.group(1)) * DURATION_UNITS_US[match.group(2)]


def duration_words(length_us: int) -> str:
    """A duration in the largest unit that divides it: 86400000000 -> "1d"."""
    for unit in ("d", "h", "m", "s"):
        size = DURATION_UNITS_US[unit]
        if length_us % size == 0:
            return f"{length_us // size}{unit}"
    return f"{length_us}us"


@dataclass(frozen=True)
class Judge:
    """A verifier a contract names: a local command (an argument list, no shell) or an
    HTTPS endpoint, and how long it may take."""

    command: tuple[str, ...] = ()
    url: str | None = None
    timeout_us: int = 30 * US_PER_SECOND

    def validate(self) -> list[str]:
        errors = []
        if bool(self.command) == (self.url is not None):
            errors.append("judge: exactly one of command (a list of arguments) or url")
        if any(not part for part in self.command):
            errors.append("judge.command: every argument is non-empty text")
        if self.url is not None and not _judge_url_ok(self.url):
            errors.append(
                f"judge.url: an https:// address (http:// only on loopback), got {self.url!r}"
            )
        if not 0 < self.timeout_us <= MAX_JUDGE_TIMEOUT_US:
            errors.append(
                f"judge.timeout: at most {MAX_JUDGE_TIMEOUT_US // US_PER_SECOND}s, "
                f"got {duration_words(self.timeout_us)}"
            )
        return errors


def _judge_url_ok(url: str) -> bool:
    if url.startswith("https://") and len(url) > len("https://"):
        return True
    if url.startswith("http://"):
        host = url[len("http://") :].split("/", 1)[0]
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return host in LOOPBACK_HOSTS
    return False


@dataclass(frozen=True)
class Rule:
    """A contract's verification rule (see the module's docstring); windows in µs."""

    confirm: bool = False
    assume_after_us: int | None = None
    follow_up: tuple[str, ...] = ()
    inactivity_us: int | None = None
    judge: Judge | None = None
    audit_rate: Decimal = Decimal(0)
    warranty_us: int | None = None

    @property
    def decides_alone(self) -> bool:
        """Whether a claim no one decides on is accepted by time alone (deemed, or by rule):
        without one, a claim waits for the customer, a judge or an auditor."""
        return self.assume_after_us is not None or not (self.confirm or self.judge)

    def validate(self) -> list[str]:
        errors = []
        for name in ("assume_after_us", "inactivity_us", "warranty_us"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= MAX_RULE_US:
                field = name.removesuffix("_us")
                errors.append(f"{field}: at most {MAX_RULE_DAYS}d, got {duration_words(value)}")
        if not self.audit_rate.is_finite() or not 0 <= self.audit_rate <= 1:
            errors.append(f"audit: a share from 0 to 1, got {self.audit_rate}")
        names = self.follow_up
        if len(names) > MAX_FOLLOW_UPS or len(set(names)) != len(names):
            errors.append(f"follow_up: at most {MAX_FOLLOW_UPS} distinct signal names")
        if any(not 0 < len(name) <= MAX_NAME_CHARS for name in names):
            errors.append(f"follow_up: each a signal name of 1 to {MAX_NAME_CHARS} characters")
        if self.judge is not None:
            errors += self.judge.validate()
        return [f"verification.{error}" for error in errors]


@dataclass(frozen=True)
class Unit:
    """What one outcome is called on an invoice."""

    singular: str
    plural: str

    def of(self, quantity: Decimal) -> str:
        return self.singular if quantity == 1 else self.plural


@dataclass(frozen=True)
class Contract:
    id: str
    version: int
    outcome: str
    """The type of the outcome claims the contract defines."""
    unit: Unit
    rule: Rule
    evidence: tuple[str, ...] = ()
    """The fields an opened evidence must hold (names only: the content stays the
    customer's)."""
    retain_evidence: bool = False
    """Whether payoff keeps an opened evidence (else it is checked, judged and dropped)."""
    description: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.id}@{self.version}"

    def validate(self) -> list[str]:
        """Errors that refuse the contract, each naming its field; empty when valid."""
        errors = []
        if not 0 < len(self.id) <= MAX_NAME_CHARS or "@" in self.id or self.id != self.id.strip():
            errors.append(f"id: a name of 1 to {MAX_NAME_CHARS} characters without '@'")
        if not 1 <= self.version <= MAX_VERSION:
            errors.append(f"version: a positive integer up to {MAX_VERSION:,}, got {self.version}")
        if not 0 < len(self.outcome) <= MAX_NAME_CHARS or self.outcome == "*":
            errors.append("outcome: the outcome type the contract defines (one type, not '*')")
        for name in ("singular", "plural"):
            if not 0 < len(getattr(self.unit, name).strip()) <= MAX_UNIT_CHARS:
                errors.append(f"unit.{name}: a word of 1 to {MAX_UNIT_CHARS} characters")
        errors += self._evidence_errors()
        if self.description is not None and not self.description.strip():
            errors.append("description: non-empty text when given")
        return errors + self.rule.validate()

    def _evidence_errors(self) -> list[str]:
        errors = []
        fields = self.evidence
        if len(fields) > MAX_EVIDENCE_FIELDS or len(set(fields)) != len(fields):
            errors.append(f"evidence: at most {MAX_EVIDENCE_FIELDS} distinct field names")
        bad = [name for name in fields if not EVIDENCE_FIELD.fullmatch(name)]
        if bad:
            errors.append(
                f"evidence: {bad[0]!r} is not a field name (letters, digits, _ . -; "
                "starting with a letter or _)"
            )
        if self.retain_evidence and not fields:
            errors.append("retain_evidence: the contract requires no evidence to retain")
        return errors
