"""Errors to HTTP answers, by type: one table, one status per category of the error tree.

The categories are drawn in `payoff.core.errors`. An error's status is that of the first
class in its method resolution order that the table names, so a class with two bases
(`OutcomeNotFound(NotFound, OutcomeError)`) is answered as its first one says. Messages
are meant for the sender and never carry secrets.

The refusals only the HTTP API makes (a key, a scope, a body's encoding, a cursor) are
defined here, in the tree like every other error: routes and dependencies raise them and
never pick a status themselves.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from payoff.core.errors import (
    Busy,
    Conflict,
    Forbidden,
    NotFound,
    PayoffError,
    Refused,
    TooLarge,
    TooSlow,
    Unauthorized,
    Unreadable,
    Unsupported,
)


class KeyRefused(Unauthorized):
    """The bearer key is missing, unknown or revoked."""


class ScopeRefused(Forbidden):
    """The key's scope does not allow the action (an admin key needed, an ingest key reading)."""


class BodyUnreadable(Unreadable):
    """A body's encoding cannot be undone: broken gzip, text that is not UTF-8, a body cut
    short by the client, JSON nested past the bound of every input (`payoff.nesting`)."""


class CursorError(Unreadable):
    """A page cursor that this server did not give out."""


class EncodingUnsupported(Unsupported):
    """A content-encoding other than gzip or deflate."""


class BodyTimeout(TooSlow):
    """A body that did not arrive whole within the body timeout."""


class BodyTooLarge(TooLarge):
    """A body beyond the bound of its path, as sent or once inflated."""


class ActionNotFound(NotFound):
    """No such action on an invoice (the path names one)."""


STATUS_BY_ERROR: dict[type[PayoffError], int] = {
    Unreadable: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    TooSlow: 408,
    Conflict: 409,
    TooLarge: 413,
    Unsupported: 415,
    Refused: 422,
    Busy: 503,
    PayoffError: 422,  # a bare PayoffError: a request the rules refuse
}
RETRY_AFTER_S = 1
"""What a Busy answer asks the client to wait before retrying."""
HEADERS_BY_ERROR: dict[type[PayoffError], dict[str, str]] = {
    KeyRefused: {"WWW-Authenticate": "Bearer"},  # a 401 names the scheme it asks for (RFC 9110)
    Busy: {"Retry-After": str(RETRY_AFTER_S)},
}
"""Headers an answer carries, by the type of the error, looked up as statuses are."""


def status_of(error: PayoffError) -> int:
    """The HTTP status that answers `error`, from its type alone."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    raise AssertionError("every PayoffError has a status: PayoffError is in the table")


def headers_of(error: PayoffError) -> dict[str, str] | None:
    """The headers that answer `error`, from its type alone (None: no more than usual)."""
    for cls in type(error).__mro__:
        headers = HEADERS_BY_ERROR.get(cls)
        if headers is not None:
            return headers
    return None


def detail_of(error: PayoffError) -> str:
    """The sentence an answer's `detail` holds."""
    return f"busy: {error}; retry shortly" if isinstance(error, Busy) else str(error)


def payoff_error_response(_: Request, exc: Exception) -> JSONResponse:
    """The exception handler for every PayoffError a route lets through."""
    assert isinstance(exc, PayoffError)
    return JSONResponse({"detail": detail_of(exc)}, status_of(exc), headers_of(exc))


def validation_error_response(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's answer to a request that does not fit the schema (422, the fields at fault,
    each with the input it got), with NaN and infinities in that input written as strings.

    Python reads `NaN` and `Infinity` in a JSON body though JSON has no such numbers; echoed
    back as numbers they would make the answer itself fail to encode.
    """
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, 422)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
