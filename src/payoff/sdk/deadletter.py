"""Records a sink could not deliver for good: reported, and kept in a file, never dropped.

A record refused by the ledger (`rejected`, `conflict`) or by the server (a 4xx answer) will
be refused again if it is sent again, so it is not retried. It goes to the dead-letter file
(JSON Lines: the problem and the record as it was), to the logger `payoff.sdk` as a warning,
and to the Meter's `on_problem` callback.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from payoff.problems import Problem

logger = logging.getLogger("payoff.sdk")
ProblemCallback = Callable[[Problem], None]


class DeadLetters:
    """Appends undeliverable records to one file (fsync'ed), logs and reports them."""

    def __init__(self, path: Path, on_problem: ProblemCallback | None) -> None:
        self.path = path
        self.on_problem = on_problem
        self.count = 0
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it at fork()

    def add(self, record: bytes, problem: Problem) -> None:
        entry = msgspec.json.encode(
            {
                "status": problem.status,
                "reason": problem.reason,
                "field": problem.field,
                "source": problem.source,
                "record": msgspec.Raw(record),
            }
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as file:
                file.write(entry + b"\n")
                file.flush()
                os.fsync(file.fileno())
            self.count += 1
        logger.warning(
            "payoff: record %s %s (%s%s); kept in %s",
            problem.id,
            problem.status,
            problem.reason,
            f", field {problem.field}" if problem.field else "",
            self.path,
        )
        self.report(problem)

    def report(self, problem: Problem) -> None:
        """Hand one problem to the `on_problem` callback, if any."""
        if self.on_problem is not None:
            try:
                self.on_problem(problem)
            except Exception:  # a faulty callback must not stop delivery of other records
                logger.exception("payoff: the on_problem callback failed")
