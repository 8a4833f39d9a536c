"""Problem: a record that was refused (rejected, conflict) or could not be delivered.

A plain value shared by file ingest, the server's answers and the SDK's dead letters. It
lives outside the service layer so that a remote Meter can report a problem without
importing the ingest pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A record that was rejected or conflicted, with where it came from."""

    line: int | None
    id: str | None
    status: str
    reason: str
    field: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "id": self.id,
            "status": self.status,
            "field": self.field,
            "reason": self.reason,
        }
