"""Response shapes, for the OpenAPI document (and so for clients and schema tests)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: Any = Field(description="What is wrong, in words meant for the sender.")


class RecordProblem(BaseModel):
    index: int = Field(description="0-based position of the record in the request.")
    id: str | None
    status: str = Field(description="rejected or conflict")
    field: str | None
    reason: str


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    unpriced: int = Field(description="Accepted steps the catalog could not price.")
    statuses: list[str] = Field(
        description="accepted, duplicate, conflict or rejected: one per record, in order."
    )
    problems: list[RecordProblem]


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Attested(BaseModel):
    id: str
    outcome: str
    verdict: str
    status: str


class KeyCreated(BaseModel):
    id: str
    scope: str
    name: str | None
    key: str = Field(description="The key itself: shown this once, never stored.")


class SecretRotated(BaseModel):
    customer: str
    secret: str = Field(description="The new webhook secret: shown this once.")
    previous_valid_for_s: int


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422)
}
