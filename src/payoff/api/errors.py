"""Errors to HTTP answers, by type: one table, one status per category of the error tree.

The categories are drawn in `payoff.core.errors`. An error's status is that of the first
class in its method resolution order that the table names, so a class with two bases
(`OutcomeNotFound(NotFound, OutcomeError)`) is answered as its first one says. Messages
are meant for the sender and never carry secrets.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from payoff.core.errors import (
    Busy,
    Conflict,
    NotFound,
    PayoffError,
    Refused,
    TooLarge,
    Unauthorized,
    Unreadable,
    Unsupported,
)

STATUS_BY_ERROR: dict[type[PayoffError], int] = {
    Unreadable: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Unsupported: 415,
    Refused: 422,
    Busy: 503,
    PayoffError: 422,  # a bare PayoffError: a request the rules refuse
}
RETRY_AFTER_S = 1
"""What a Busy answer asks the client to wait before retrying."""


def status_of(error: PayoffError) -> int:
    """The HTTP status that answers `error`, from its type alone."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    raise AssertionError("every PayoffError has a status: PayoffError is in the table")


def payoff_error_response(_: Request, exc: Exception) -> JSONResponse:
    """The exception handler for every PayoffError a route lets through."""
    assert isinstance(exc, PayoffError)
    status = status_of(exc)
    if status == STATUS_BY_ERROR[Busy]:
        return JSONResponse(
            {"detail": f"busy: {exc}; retry shortly"}, status, {"Retry-After": str(RETRY_AFTER_S)}
        )
    return JSONResponse({"detail": str(exc)}, status)
