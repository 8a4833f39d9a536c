"""Ledger rows as canonical JSON lines: what an invoice was computed from, and its digest.

An invoice is computed from rows of the ledger: its customer's events, tasks and their
status changes, outcome claims, the verdicts on them (attestations and decisions) and the
signals about their tasks, the customer's subscriptions, the plan versions they name and the
outcome contracts those name, and, for late lines, the finalized invoices whose lines were
subtracted. `core.derivation.select_rows` says exactly
which. Each row is one line of canonical JSON (keys sorted, no spaces, `table` naming its
table), the lines are in one order, and

    records digest = sha256 of the lines, each followed by a newline

which is what a finalized invoice's seal records (`core.chain.Seal.records_digest`) and
what a customer's bundle holds line for line: `sha256sum` over those lines gives it back.

Order: tables as in TABLES, and within a table by the key its entry names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from json.encoder import encode_basestring_ascii as _escape  # what json.dumps escapes with
from operator import attrgetter
from types import UnionType
from typing import Any, NamedTuple, Union, get_args, get_origin, get_type_hints

from payoff.core.canonical import DocumentError, canonical_json


class PlanRow(NamedTuple):
    id: str
    version: int
    currency: str
    digest: str
    body: dict[str, Any]


class SeatCountRow(NamedTuple):
    """A seat count of the customer, in effect from the start of a day (`core.seats`)."""

    customer: str
    effective_at_us: int
    seats: int
    recorded_at_us: int


class ContractRow(NamedTuple):
    """An outcome contract a plan's charge names."""

    id: str
    version: int
    digest: str
    body: dict[str, Any]


class SubscriptionRow(NamedTuple):
    """A subscription as it bears on an invoice: its end is left out (None) when it falls
    at or after the end of the invoice's period (a later change of plan ends it there)."""

    customer: str
    plan_id: str
    plan_version: int
    starts_at_us: int
    ends_at_us: int | None


class InvoiceRow(NamedTuple):
    """A finalized invoice whose lines an invoice's late lines were computed against: its
    stored document (status aside, which moves)."""

    id: str
    document: dict[str, Any]


class TaskRow(NamedTuple):
    id: str
    customer: str
    type: str | None
    started_at_us: int | None
    created_at_us: int


class TaskUpdateRow(NamedTuple):
    task: str
    status: str
    customer: str
    type: str | None
    occurred_at_us: int
    received_at_us: int


class EventRow(NamedTuple):
    id: str
    occurred_at_us: int
    received_at_us: int
    customer: str
    task: str | None
    task_type: str | None
    kind: str
    provider: str | None
    model: str | None
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    visible: bool
    batch: bool
    quantity: str | None
    unit: str | None
    cost_given_nanousd: int | None
    cost_nanousd: int | None
    cost_visible_nanousd: int | None
    cost_source: str | None
    attributes: str | None


class SupersededCost(NamedTuple):
    """A cost an event held until `payoff recost` replaced it at `until_us`.

    Not a table of the records digest: `core.derivation.select_rows` gives each event the
    cost that held at the invoice's as-of time, and the digest is of those rows.
    """

    event: str
    cost_nanousd: int | None
    cost_visible_nanousd: int | None
    cost_source: str | None
    until_us: int


class OutcomeRow(NamedTuple):
    id: str
    task: str
    customer: str
    type: str
    value: str | None
    evidence_digest: str | None
    occurred_at_us: int
    received_at_us: int


class AttestationRow(NamedTuple):
    id: str
    outcome: str
    verdict: str
    occurred_at_us: int
    received_at_us: int


class DecisionRow(NamedTuple):
    outcome: str
    action: str
    by: str
    reason: str | None
    occurred_at_us: int
    received_at_us: int


class SignalRow(NamedTuple):
    """A signal about a task of one of the invoice's claims (`about_task`: the task the
    signal names, or the task of the outcome it names)."""

    id: str
    customer: str
    about_task: str
    outcome: str | None
    name: str
    occurred_at_us: int
    received_at_us: int


class Table(NamedTuple):
    """A table whose rows an invoice reads: its row type and the key that orders it (unique
    within the table)."""

    name: str
    row: type[Any]
    key: Callable[[Any], Any]


TABLES = (
    Table("plans", PlanRow, attrgetter("id", "version")),
    Table("contracts", ContractRow, attrgetter("id", "version")),
    Table("subscriptions", SubscriptionRow, attrgetter("starts_at_us", "plan_id", "plan_version")),
    Table("seat_counts", SeatCountRow, attrgetter("effective_at_us", "recorded_at_us")),
    Table("invoices", InvoiceRow, attrgetter("id")),
    Table("tasks", TaskRow, attrgetter("id")),
    Table("task_updates", TaskUpdateRow, attrgetter("task", "status")),
    Table("events", EventRow, attrgetter("occurred_at_us", "id")),
    Table("outcomes", OutcomeRow, attrgetter("occurred_at_us", "id")),
    Table("attestations", AttestationRow, attrgetter("id")),
    Table(
        "outcome_decisions",
        DecisionRow,
        lambda r: (r.outcome, r.occurred_at_us, r.received_at_us, r.action, r.by, r.reason or ""),
    ),
    Table("signals", SignalRow, attrgetter("id")),
)
BY_NAME = {table.name: table for table in TABLES}


@dataclass(frozen=True)
class LedgerRows:
    """Rows of one customer's ledger, by table (fields named as TABLES names them)."""

    plans: tuple[PlanRow, ...] = ()
    contracts: tuple[ContractRow, ...] = ()
    subscriptions: tuple[SubscriptionRow, ...] = ()
    seat_counts: tuple[SeatCountRow, ...] = ()
    invoices: tuple[InvoiceRow, ...] = ()
    tasks: tuple[TaskRow, ...] = ()
    task_updates: tuple[TaskUpdateRow, ...] = ()
    events: tuple[EventRow, ...] = ()
    outcomes: tuple[OutcomeRow, ...] = ()
    attestations: tuple[AttestationRow, ...] = ()
    outcome_decisions: tuple[DecisionRow, ...] = ()
    signals: tuple[SignalRow, ...] = ()
    superseded_costs: tuple[SupersededCost, ...] = ()
    """Costs replaced since (see SupersededCost): read with the events, resolved away by
    `select_rows`; never written as lines."""

    def count(self) -> int:
        return sum(len(getattr(self, table.name)) for table in TABLES)

    def in_order(self) -> LedgerRows:
        """The same rows, each table in its key's order, one row a key (a table's key is
        unique in a ledger: a later row of the same key replaces an earlier one)."""
        ordered = {}
        for table in TABLES:
            by_key = {table.key(row): row for row in getattr(self, table.name)}
            ordered[table.name] = tuple(by_key[key] for key in sorted(by_key))
        return LedgerRows(**ordered)

    def lines(self) -> Iterator[str]:
        """Every row as its canonical line, in order (call `in_order()` first)."""
        for table in TABLES:
            for row in getattr(self, table.name):
                yield row_line(table.name, row)

    def digest(self) -> str:
        """The records digest: sha256 of the lines, each ended by a newline (of rows in
        order: as `in_order()` and `core.derivation.select_rows` give them)."""
        return lines_digest(self.lines())


def row_line(table: str, row: Any) -> str:
    """A row as its canonical line: `canonical_json({"table": table, **row})`, written
    field by field (a ledger holds millions of rows; a test holds the two to the same
    bytes)."""
    return _ENCODERS[table](row)


def _value(value: object) -> str:
    """One value as canonical JSON: strings ASCII-escaped as `json` escapes them."""
    if value.__class__ is str:
        return _escape(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is int:
        return int.__repr__(value)
    return canonical_json(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _optional_str(value: str | None) -> str:
    return "null" if value is None else _escape(value)


def _optional_int(value: int | None) -> str:
    return "null" if value is None else int.__repr__(value)


_FORMATS: dict[str, Callable[[Any], str]] = {
    "int": int.__repr__,
    "str": _escape,
    "bool": _bool,
    "str | None": _optional_str,
    "int | None": _optional_int,
}
"""How a field of each kind is written; any other (a JSON object): _value."""


def _encoder(table: Table) -> Callable[[Any], str]:
    """A row's line: one %-template, keys in sorted order and the table's name among them,
    filled with each field written by its kind."""
    keys = sorted([*table.row._fields, "table"])
    kinds = _field_kinds(table.row)
    template = (
        "{"
        + ",".join(
            f'"{key}":' + (canonical_json(table.name) if key == "table" else "%s") for key in keys
        )
        + "}"
    )
    fields_ = [
        (_FORMATS.get(kinds[key], _value), table.row._fields.index(key))
        for key in keys
        if key != "table"
    ]

    def encode(row: Any) -> str:
        return template % tuple([write(row[at]) for write, at in fields_])

    return encode


def lines_digest(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def row_from_value(value: object, where: str) -> tuple[str, Any]:
    """(table, row) of one parsed line; DocumentError naming `where` and the field when a
    table is unknown or a field is missing, unknown or of the wrong type."""
    if not isinstance(value, Mapping):
        raise DocumentError(f"{where}: expected an object, got {value!r}")
    name = value.get("table")
    if name not in BY_NAME:
        raise DocumentError(f"{where}: table: not one an invoice reads, got {name!r}")
    row_type = BY_NAME[name].row
    wanted = set(row_type._fields)
    missing, unknown = sorted(wanted - set(value)), sorted(set(value) - wanted - {"table"})
    if missing or unknown:
        raise DocumentError(f"{where}: {name} row: missing {missing}, unknown {unknown}")
    for field, types in _TYPES[name]:
        if type(value[field]) not in types:  # exact: a bool is not an int
            kinds = _KINDS[name][field]
            raise DocumentError(f"{where}: {name}.{field}: expected {kinds}, got {value[field]!r}")
    return name, row_type(**{field: value[field] for field in row_type._fields})


def row_from_line(text: str, where: str) -> tuple[str, Any]:
    """(table, row) of one line; DocumentError naming `where` when it is not JSON, not a
    row (see row_from_value), or not the row's canonical line (it would hash another way)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DocumentError(f"{where}: not JSON: {exc}") from None
    name, row = row_from_value(value, where)
    if row_line(name, row) != text:
        raise DocumentError(f"{where}: not canonical JSON (keys sorted, no spaces, ASCII)")
    return name, row


def rows_from_lines(lines: Iterable[tuple[str, str]]) -> LedgerRows:
    """LedgerRows of lines, each with where it came from (for errors), in the lines' order."""
    found: dict[str, list[Any]] = {table.name: [] for table in TABLES}
    for text, where in lines:
        name, row = row_from_line(text, where)
        found[name].append(row)
    return LedgerRows(**{name: tuple(rows) for name, rows in found.items()})


def _field_kinds(row_type: type[Any]) -> dict[str, str]:
    """Each field's JSON kinds, from its annotation: "str", "int | None", "object" (a dict)."""
    return {
        name: " | ".join(_kind(arg) for arg in (get_args(hint) if _is_union(hint) else (hint,)))
        for name, hint in get_type_hints(row_type).items()
    }


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, UnionType)


def _kind(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if hint is dict or get_origin(hint) is dict:
        return "object"
    return str(hint.__name__)


def parse_line(text: str, where: str) -> object:
    """One line's JSON value; DocumentError when it is not JSON, or not canonical (keys
    sorted, no spaces, ASCII): a line that is not canonical would hash another way."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DocumentError(f"{where}: not JSON: {exc}") from None
    if canonical_json(value) != text:
        raise DocumentError(f"{where}: not canonical JSON (keys sorted, no spaces, ASCII)")
    return value


assert {table.name for table in TABLES} == {f.name for f in fields(LedgerRows)} - {
    "superseded_costs"
}

_ENCODERS = {table.name: _encoder(table) for table in TABLES}
_KINDS = {table.name: _field_kinds(table.row) for table in TABLES}
_PYTHON_TYPES = {"str": str, "int": int, "bool": bool, "None": type(None), "object": dict}
_TYPES = {
    name: [
        (field, {_PYTHON_TYPES[k] for k in kinds.split(" | ")}) for field, kinds in found.items()
    ]
    for name, found in _KINDS.items()
}
"""Per table, each field and the Python types its JSON value may decode to."""
