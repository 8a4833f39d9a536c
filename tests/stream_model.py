"""A model of what the ledger must do with a stream of records, written from docs/records.md.

The fuzzer (test_fuzz_records.py) generates each line of a stream knowing what it is: a
valid record (`Valid`, with the content the ledger must keep) or a malformed one
(`Malformed`, with the fields a refusal may name). This module replays the stream as the
documented rules say and answers, line by line, what the ledger must report, and what it
must hold at the end:

- a malformed line is rejected, naming its field (any field, or none, when the line is not
  a JSON object at all);
- the same key with the same content is a duplicate, with other content a conflict naming a
  field that differs; the first record seen with a key is the one kept;
- a task belongs to the customer it was first accepted with; a record of another customer
  naming it is rejected (`task`); an outcome must name a task already known (`task`);
- a verdict must name an outcome already stored (`outcome`) and follow its lifecycle
  (`verdict`): with no plan, a claim is verified when made, so only `accept` is allowed;
- over HTTP, a verdict sent to /v1/events is rejected (`record`): it must come signed.

Within a batch (a request, or up to 10,000 lines of a file) the records are applied kind by
kind (usage, then task, outcome and attestation records), each kind in line order, so that
an outcome may name a task that a later line of the same batch brings into being.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from record_streams import Key

FINAL = ("completed", "failed", "abandoned")
KIND_ORDER = ("usage", "task", "outcome", "attestation")
ANY_FIELD = None
"""`Malformed.fields` for a line that is not a JSON object: no field can be named."""


@dataclass(frozen=True)
class Valid:
    """A record the decoder must accept, and what the ledger keeps of it."""

    kind: str
    key: Key
    content: tuple[tuple[str, Any], ...]
    """(field, value) as stored: times in UTC microseconds, usage in inclusive buckets."""

    def get(self, name: str) -> Any:
        return dict(self.content).get(name)

    @property
    def customer(self) -> str | None:
        return self.get("customer")

    @property
    def task(self) -> str | None:
        """The task this record names (a task record names itself)."""
        return self.key[1] if self.kind == "task" else self.get("task")


@dataclass(frozen=True)
class Malformed:
    """A line the decoder must refuse; `hostile` says how it was made."""

    hostile: str
    fields: frozenset[str] | None
    """Fields the refusal may name (a name, or a path under it); ANY_FIELD: any or none."""


Intent = Valid | Malformed


@dataclass(frozen=True)
class Expected:
    status: str  # accepted | duplicate | conflict | rejected
    fields: frozenset[str] | None = frozenset()
    """For conflicts and rejections: the fields the answer may name (ANY_FIELD: any)."""


@dataclass
class TaskState:
    owner: str
    type: str | None
    status: str = "open"
    status_at_us: int | None = None


@dataclass
class Ledger:
    """What the ledger holds, as the model sees it."""

    records: dict[Key, Valid] = field(default_factory=dict)
    tasks: dict[str, TaskState] = field(default_factory=dict)


def names_field(reported: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a reported field is one of the allowed ones (a path under one counts)."""
    if allowed is ANY_FIELD:
        return True
    if reported is None:
        return False
    return any(
        reported == name or reported.startswith((f"{name}.", f"{name}[")) for name in allowed
    )


def _differing(stored: Valid, incoming: Valid) -> frozenset[str]:
    a, b = dict(stored.content), dict(incoming.content)
    return frozenset(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


class Model:
    """Replays batches of lines; `expected` is aligned with the lines given."""

    def __init__(self, *, over_http: bool) -> None:
        self.over_http = over_http
        self.ledger = Ledger()

    def batch(self, intents: list[Intent]) -> list[Expected]:
        answers: list[Expected | None] = [None] * len(intents)
        by_kind: dict[str, list[tuple[int, Valid]]] = {kind: [] for kind in KIND_ORDER}
        for index, intent in enumerate(intents):
            if isinstance(intent, Malformed):
                answers[index] = Expected("rejected", intent.fields)
            elif intent.kind == "attestation" and self.over_http:
                answers[index] = Expected("rejected", frozenset({"record"}))
            else:
                by_kind[intent.kind].append((index, intent))
        # Verdicts are checked against the outcomes stored before the batch and the
        # outcome lines of the batch, before anything of the batch is written.
        outcomes_seen = set(self.ledger.records) | {r.key for _, r in by_kind["outcome"]}
        answers_by_kind = [
            self._usage_or_task(by_kind["usage"]),
            self._usage_or_task(by_kind["task"]),
            self._outcomes(by_kind["outcome"]),
            self._attestations(by_kind["attestation"], outcomes_seen),
        ]
        for found in answers_by_kind:
            for index, expected in found:
                answers[index] = expected
        assert all(a is not None for a in answers)
        return [a for a in answers if a is not None]

    # -- one kind of a batch ---------------------------------------------------------------

    def _keep(
        self, rows: Iterable[tuple[int, Valid, Expected | None]]
    ) -> list[tuple[int, Expected]]:
        """Duplicates and conflicts against what is stored (or earlier in the batch)."""
        found = []
        for index, record, refused in rows:
            if refused is not None:
                found.append((index, refused))
                continue
            stored = self.ledger.records.get(record.key)
            if stored is None:
                self.ledger.records[record.key] = record
                found.append((index, Expected("accepted")))
            elif stored.content == record.content:
                found.append((index, Expected("duplicate")))
            else:
                found.append((index, Expected("conflict", _differing(stored, record))))
        return found

    def _owner(self, task: str, pending: dict[str, str]) -> str | None:
        state = self.ledger.tasks.get(task)
        return state.owner if state is not None else pending.get(task)

    def _usage_or_task(self, rows: list[tuple[int, Valid]]) -> list[tuple[int, Expected]]:
        pending_owners: dict[str, str] = {}
        found: list[tuple[int, Expected]] = []
        accepted: list[Valid] = []
        for index, record in rows:
            task = record.task
            owner = None if task is None else self._owner(task, pending_owners)
            if task is not None and owner is not None and owner != record.customer:
                found.append((index, Expected("rejected", frozenset({"task"}))))
                continue
            ((_, expected),) = self._keep([(index, record, None)])
            found.append((index, expected))
            if expected.status == "accepted":
                accepted.append(record)
                if task is not None and owner is None:
                    pending_owners[task] = str(record.customer)
        self._bring_tasks_into_being(accepted)
        self._apply_statuses([r for r in accepted if r.kind == "task"])
        return found

    def _bring_tasks_into_being(self, accepted: list[Valid]) -> None:
        for record in accepted:
            task = record.task
            if task is None:
                continue
            kind = record.get("task_type") if record.kind == "usage" else record.get("type")
            state = self.ledger.tasks.get(task)
            if state is None:
                self.ledger.tasks[task] = TaskState(str(record.customer), kind)
            elif state.type is None and kind is not None:
                state.type = kind

    def _apply_statuses(self, accepted: list[Valid]) -> None:
        # The latest status wins; at the same instant a final status beats `open`.
        for record in sorted(accepted, key=lambda r: (r.get("time"), r.key[2] in FINAL)):
            state = self.ledger.tasks[str(record.task)]
            at = record.get("time")
            if (
                state.status_at_us is None
                or state.status_at_us < at
                or (state.status_at_us == at and state.status == "open")
            ):
                state.status, state.status_at_us = record.key[2], at

    def _outcomes(self, rows: list[tuple[int, Valid]]) -> list[tuple[int, Expected]]:
        checked: list[tuple[int, Valid, Expected | None]] = []
        for index, record in rows:
            state = self.ledger.tasks.get(str(record.task))
            refused = None
            if state is None or state.owner != record.customer:
                refused = Expected("rejected", frozenset({"task"}))
            checked.append((index, record, refused))
        return self._keep(checked)

    def _attestations(
        self, rows: list[tuple[int, Valid]], outcomes_seen: set[Key]
    ) -> list[tuple[int, Expected]]:
        checked: list[tuple[int, Valid, Expected | None]] = []
        stored_before = set(self.ledger.records)
        for index, record in rows:
            outcome = ("outcome", record.get("outcome"))
            refused = None
            lifecycle_checked = outcome in outcomes_seen and record.key not in stored_before
            if lifecycle_checked and record.get("verdict") != "accept":
                # With no plan a claim is verified when made: it can be confirmed, not
                # rejected, and not reversed (no warranty).
                refused = Expected("rejected", frozenset({"verdict"}))
            elif outcome not in self.ledger.records:
                refused = Expected("rejected", frozenset({"outcome"}))
            checked.append((index, record, refused))
        return self._keep(checked)
