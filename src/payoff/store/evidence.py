"""Openings of committed evidence in the SQL store: every one kept, matched or not.

An opening that did not match its commitment is kept as a flag (the integrity report
counts them); the evidence itself is kept when the outcome's contract retains it, or held
for the auditor while a claim in the audit sample waits for review (then forgotten).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import NamedTuple

from sqlalchemy import Connection, Engine, select, update

from payoff.store import schema as s
from payoff.store.in_lists import chunks


class EvidenceOpening(NamedTuple):
    outcome: str
    matched: bool
    by: str
    """The key's scope that opened it: `admin`, or `customer:ID`."""
    reason: str | None
    evidence: str | None
    """The canonical evidence, when its contract retains it or an auditor is to review it;
    else None."""
    opened_at_us: int


class EvidenceQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]

    def add_evidence_opening(self, opening: EvidenceOpening) -> None:
        with self._write_transaction() as conn:
            conn.execute(s.evidence_openings.insert().values(**opening._asdict()))

    def forget_evidence(self, outcome: str) -> None:
        """Erase the evidence held for an outcome's auditor (the openings themselves stay)."""
        e = s.evidence_openings.c
        with self._write_transaction() as conn:
            conn.execute(
                update(s.evidence_openings)
                .where(e.outcome == outcome, e.evidence.is_not(None))
                .values(evidence=None)
            )

    def evidence_openings(self, outcomes: Iterable[str]) -> dict[str, list[EvidenceOpening]]:
        """Every opening of the evidence of these outcomes, in the order they were made."""
        e = s.evidence_openings.c
        columns = [e[name] for name in EvidenceOpening._fields]
        found: dict[str, list[EvidenceOpening]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(outcomes))):
                query = select(*columns).where(e.outcome.in_(chunk)).order_by(e.seq)
                for row in conn.execute(query):
                    found[row.outcome].append(EvidenceOpening(*row))
        return found
