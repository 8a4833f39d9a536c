"""Request fields read as strictly as docs/server.md documents them.

FastAPI decodes a JSON body and pydantic then validates it in Python mode, which is lax:
`true` passes for the number 1, `"30"` and `30.0` for 30, a Unix timestamp for a time, a
timestamp at midnight for a day. Here a count is a JSON integer (`Body(strict=True)`), a day
a "YYYY-MM-DD" string and a time an RFC 3339 string; anything else is a 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BeforeValidator

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day_text(value: object) -> object:
    if isinstance(value, str) and _DAY.fullmatch(value):
        return value
    raise ValueError("a day is a string YYYY-MM-DD")


def _time_text(value: object) -> object:
    if isinstance(value, str):
        return value
    raise ValueError("a time is an RFC 3339 string with a time-zone offset")


DayText = Annotated[dt.date, BeforeValidator(_day_text)]
"""A day, given as "YYYY-MM-DD" and nothing else."""
TimeText = Annotated[dt.datetime, BeforeValidator(_time_text)]
"""A time, given as an RFC 3339 string (never a number of seconds)."""
