"""Record formats 1 and 2 (see docs/records.md): typed, strict decoding of JSON records.

Unknown fields are errors, counts are non-negative integers, parts never exceed totals, and
times carry an offset. A usage record may carry a provider's own usage object instead of the
token fields; it is normalised here to the inclusive buckets (`payoff.core.tokens`).

Version 2 adds the details of a usage record (audio, image and video tokens, one-hour cache
writes, web searches), and a record says `"version": 2` to use them. Version-1 records are
decoded as they always were, by `UsageRecord`, and never pay for the second format: a usage
line that names a version-2 field is refused by that decoder at once and decoded again by
`UsageRecordV2`, which adds the fields.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from payoff.core.errors import RecordError
from payoff.core.statuses import TaskStatus
from payoff.core.tokens import (
    DETAIL_FIELDS,
    MAX_TOKENS,
    TokenCounts,
    UsageDetails,
    normalise_usage,
    normalise_usage_details,
)
from payoff.nesting import MAX_DEPTH, deep_field, too_deep, too_deep_reason

MAX_ID_LENGTH = 255
MAX_ATTRIBUTES = 64
MAX_RECORD_BYTES = 64 * 1024
"""A record's JSON, at most: a hundred times a real one, small enough that a batch of them
stays within ingest's memory bound (a longer line is refused unread)."""

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Time = Annotated[dt.datetime, msgspec.Meta(tz=True)]
MAX_QUANTITY = Decimal(10**15)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
# Money as a plain decimal string: no exponent, sign, spaces or underscores. A cost has at
# most nine places (the nano-USD scale) and nine whole digits, so that it fits the ledger.
COST = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
VALUE = re.compile(r"[0-9]{1,15}(\.[0-9]{1,18})?")
Attributes = Annotated[dict[str, str], msgspec.Meta(max_length=MAX_ATTRIBUTES)]
UsageFormat = Literal["openai.chat", "openai.responses", "anthropic", "gemini"]

_TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def _check_time(moment: dt.datetime) -> None:
    try:
        inside = EARLIEST <= moment < LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise _invalid("must be from 1970-01-01 to 8999-12-31 once in UTC", "time")


def _missing(kind: str, fields: tuple[str, ...], record: Any) -> ValueError:
    field = next(f for f in fields if getattr(record, f) is None)
    return _invalid(f"required for kind `{kind}`; missing `{field}`", field)


def _invalid(reason: str, field: str) -> ValueError:
    # The same shape msgspec gives its own errors, so one parser reads both.
    return ValueError(f"{reason} - at `$.{field}`")


class _Record(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="record", omit_defaults=True, gc=False
):
    pass


class UsageRecord(_Record, tag="usage"):
    """One metered step: a model call, a tool call, or a custom unit."""

    id: Id
    time: Time
    customer: Name
    task: Id | None = None
    task_type: Name | None = None
    kind: Literal["llm", "tool", "custom"] = "llm"
    provider: Name | None = None
    model: Name | None = None
    input_tokens: Count | None = None
    cache_read_tokens: Count | None = None
    cache_write_tokens: Count | None = None
    output_tokens: Count | None = None
    reasoning_tokens: Count | None = None
    visible: bool = False
    batch: bool = False
    cost: str | None = None
    quantity: Decimal | None = None
    unit: Name | None = None
    usage: dict[str, Any] | None = None
    usage_format: UsageFormat | None = None
    attributes: Attributes | None = None

    def __post_init__(self) -> None:
        # The hot path of ingest: plain comparisons, no intermediate objects.
        _check_time(self.time)
        if self.usage is not None or self.usage_format is not None:
            self._take_provider_usage()
        if self.kind == "llm":
            if self.provider is None or self.model is None or self.input_tokens is None:
                raise _missing("llm", ("provider", "model", "input_tokens"), self)
            if self.output_tokens is None:
                raise _missing("llm", ("output_tokens",), self)
        elif self.kind == "custom" and (self.quantity is None or self.unit is None):
            raise _missing("custom", ("quantity", "unit"), self)
        input_tokens = self.input_tokens or 0
        cache_read = self.cache_read_tokens or 0
        cache_write = self.cache_write_tokens or 0
        if cache_read + cache_write > input_tokens:
            raise _invalid(
                f"cache_read_tokens ({cache_read}) + cache_write_tokens ({cache_write}) "
                f"exceed input_tokens ({input_tokens})",
                "input_tokens",
            )
        reasoning = self.reasoning_tokens or 0
        if reasoning > (self.output_tokens or 0):
            raise _invalid(
                f"reasoning_tokens ({reasoning}) exceed output_tokens ({self.output_tokens or 0})",
                "reasoning_tokens",
            )
        if self.cost is not None and not COST.fullmatch(self.cost):
            raise _invalid(
                f"{self.cost!r} is not a decimal string of USD below 1,000,000,000 with at most "
                "9 decimal places",
                "cost",
            )
        quantity = self.quantity
        if quantity is not None:
            exponent = quantity.as_tuple().exponent  # a letter for NaN and infinities
            if not (
                isinstance(exponent, int) and exponent >= -18 and 0 <= quantity <= MAX_QUANTITY
            ):
                raise _invalid(f"must be a decimal from 0 to {MAX_QUANTITY}", "quantity")

    def _take_provider_usage(self) -> None:
        if self.usage is None or self.usage_format is None:
            missing = "usage" if self.usage is None else "usage_format"
            raise _invalid("`usage` and `usage_format` go together", missing)
        given = [f for f in _TOKEN_FIELDS if getattr(self, f) is not None]
        if given:
            raise _invalid("give token fields or a `usage` object, not both", given[0])
        try:
            counts = self._normalised(self.usage_format, self.usage)
        except RecordError as exc:
            raise _invalid(exc.reason, exc.field or "usage") from None
        (
            self.input_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.output_tokens,
            self.reasoning_tokens,
        ) = counts

    def _normalised(self, usage_format: str, usage: dict[str, Any]) -> TokenCounts:
        return normalise_usage(usage_format, usage)

    def usage_details(self) -> UsageDetails | None:
        """The record format v2 details; None for a version-1 record (every token is text)."""
        return None

    def token_counts(self) -> TokenCounts:
        # tuple.__new__ skips the NamedTuple constructor's argument handling (hot path).
        return tuple.__new__(
            TokenCounts,
            (
                self.input_tokens or 0,
                self.cache_read_tokens or 0,
                self.cache_write_tokens or 0,
                self.output_tokens or 0,
                self.reasoning_tokens or 0,
            ),
        )


# The fields version 2 adds to a usage record, in UsageDetails order.
V2_FIELDS = tuple(DETAIL_FIELDS.values())


class UsageRecordV2(UsageRecord, tag="usage"):
    """A usage record in format version 2: version 1 and the details of the step.

    With a `usage` object, the details are read from it too; a version-1 record reads only
    the five buckets from the same object, so an old record never changes meaning.
    """

    version: Literal[1, 2] | None = None
    input_audio_tokens: Count | None = None
    input_image_tokens: Count | None = None
    input_video_tokens: Count | None = None
    cache_audio_read_tokens: Count | None = None
    cache_image_read_tokens: Count | None = None
    cache_video_read_tokens: Count | None = None
    cache_write_1h_tokens: Count | None = None
    output_audio_tokens: Count | None = None
    output_image_tokens: Count | None = None
    output_video_tokens: Count | None = None
    web_search_requests: Count | None = None

    def __post_init__(self) -> None:
        given = [name for name in V2_FIELDS if getattr(self, name) is not None]
        if given and self.version != 2:
            raise _invalid('is a field of record format version 2: add "version": 2', given[0])
        if given and self.usage is not None:
            raise _invalid("give token fields or a `usage` object, not both", given[0])
        super().__post_init__()
        details = self.usage_details()
        if given and details is not None:
            try:
                details.check(self.token_counts())
            except RecordError as exc:
                raise _invalid(exc.reason, exc.field or given[0]) from None

    def _normalised(self, usage_format: str, usage: dict[str, Any]) -> TokenCounts:
        if self.version != 2:
            return normalise_usage(usage_format, usage)
        counts, details = normalise_usage_details(usage_format, usage)
        for name, value in zip(V2_FIELDS, details, strict=True):
            setattr(self, name, value or None)
        return counts

    def usage_details(self) -> UsageDetails | None:
        if self.version != 2:
            return None
        return UsageDetails(*(getattr(self, name) or 0 for name in V2_FIELDS))


class TaskRecord(_Record, tag="task"):
    """A status change of a unit of work; (id, status) is its idempotency key."""

    id: Id
    customer: Name
    status: TaskStatus
    time: Time
    type: Name | None = None

    def __post_init__(self) -> None:
        _check_time(self.time)


class OutcomeRecord(_Record, tag="outcome"):
    """A claim that a task achieved a result, with an optional money value."""

    id: Id
    task: Id
    customer: Name
    type: Name
    time: Time
    value: str | None = None
    evidence_digest: Annotated[str, msgspec.Meta(max_length=512)] | None = None

    def __post_init__(self) -> None:
        _check_time(self.time)
        if self.value is not None and not VALUE.fullmatch(self.value):
            raise _invalid(
                f'{self.value!r} is not a plain non-negative decimal string (like "120.00")',
                "value",
            )


class AttestationRecord(_Record, tag="attestation"):
    """A customer's verdict on an outcome."""

    id: Id
    outcome: Id
    verdict: Literal["accept", "reject", "reverse"]
    time: Time

    def __post_init__(self) -> None:
        _check_time(self.time)


class SignalRecord(_Record, tag="signal"):
    """A signal from the customer's systems about a task or an outcome (a follow-up such as
    `conversation.reopened`, or any activity): outcome contracts read them."""

    id: Id
    name: Name
    time: Time
    task: Id | None = None
    outcome: Id | None = None
    attributes: Attributes | None = None

    def __post_init__(self) -> None:
        _check_time(self.time)
        if self.task is None and self.outcome is None:
            raise _invalid("a signal names a task, an outcome, or both", "task")


Record = UsageRecord | TaskRecord | OutcomeRecord | AttestationRecord | SignalRecord
"""A decoded record; a version-2 usage record is a `UsageRecordV2`, a `UsageRecord` too."""

_usage_decoder = msgspec.json.Decoder(UsageRecord)
_usage_v2_decoder = msgspec.json.Decoder(UsageRecordV2)
_any_decoder = msgspec.json.Decoder(Record)


class _Kind(msgspec.Struct):
    record: Any = "usage"


_kind_decoder = msgspec.json.Decoder(_Kind)
_encoder = msgspec.json.Encoder()
_FIELD_IN_MESSAGE = re.compile(r" - at `\$\.?([^`]*)`$")
_V2_ONLY = re.compile("Object contains unknown field `(?:version|" + "|".join(V2_FIELDS) + ")`")


def _record_error(exc: Exception, line: int | None) -> RecordError:
    message = str(exc)
    match = _FIELD_IN_MESSAGE.search(message)
    if match:
        return RecordError(message[: match.start()], field=match.group(1) or None, line=line)
    unknown = re.match(r"Object contains unknown field `([^`]*)`", message)
    if unknown:
        return RecordError("unknown field", field=unknown.group(1), line=line)
    missing = re.match(r"Object missing required field `([^`]*)`", message)
    if missing:
        return RecordError("missing required field", field=missing.group(1), line=line)
    return RecordError(message, line=line)


def decode_record(data: bytes | str, line: int | None = None) -> Record:
    """Decode one JSON record; RecordError names the line and field at fault."""
    return decode_line(data.encode() if isinstance(data, str) else data, line)


def decode_line(raw: bytes, line: int | None = None, *, plain: bool = False) -> Record:
    """decode_record of one line of a batch; `plain`: `plain_lines` holds of its batch,
    which saves checking the line alone."""
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordError(f"longer than the {MAX_RECORD_BYTES:,} bytes a record may be", line=line)
    # It cannot nest deeper than it has openers: the common case, without a call.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and too_deep(raw):
        raise RecordError(too_deep_reason(), field=deep_field(raw), line=line)
    try:
        record = _decoded(raw, line)
    except RecordError:
        # A key given twice is the fault to name, whatever its last value made wrong.
        repeated = _repeated_in_refused(raw)
        if repeated is not None:
            raise _given_twice(repeated, line) from None
        raise
    repeated = _repeated_key(raw, record, plain)
    if repeated is not None:
        raise _given_twice(repeated, line)
    return record


def _given_twice(field: str, line: int | None) -> RecordError:
    return RecordError(
        "given twice in one object (which one counts would be a guess)", field=field, line=line
    )


def _repeated_in_refused(raw: bytes) -> str | None:
    try:
        return _first_repeated_key(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None  # not an object at the top: its refusal stands as it is


def _decoded(raw: bytes, line: int | None) -> Record:
    try:
        return _usage_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        if _V2_ONLY.fullmatch(str(exc)):
            return _decode_usage_v2(raw, line)
        # Usage records are most lines, so they are tried first. The decoder stops at the
        # first field a usage record lacks, which may come before `record` (JSON objects
        # are unordered): the error stands only if the line is a usage record after all.
        if not str(exc).endswith("at `$.record`") and _kind_of(raw) == "usage":
            raise _record_error(exc, line) from None
    except msgspec.DecodeError as exc:
        raise RecordError(f"not valid JSON ({exc})", line=line) from None
    except RecursionError:  # measured before; a last line of defence
        raise RecordError(too_deep_reason(), line=line) from None
    try:
        return _any_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _record_error(exc, line) from None
    except RecursionError:
        raise RecordError(too_deep_reason(), line=line) from None


# -- repeated keys ----------------------------------------------------------------------------
# A decoder keeps the last of two values of one key, and another reader may keep the first:
# a record saying two things is refused. Finding out exactly costs a second decode; most
# lines are cleared in C instead. Without a backslash (no escapes, so no quote inside a
# string) and without white space before a colon (no tab, carriage return or inner new
# line, no space before one), every key in the text ends in `":` and nothing else does but
# a string value starting with a colon: the `":`s number the keys in the text, or more. The
# record decoded holds as many distinct keys as its top-level object and its nested ones
# (`attributes`, `usage`). Equal counts: no key was given twice. Anything else is checked
# exactly. Whether a line is plain is asked of its whole batch at once (`plain_lines`): a
# few searches of one text rather than a few a line.

_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])


def plain_lines(lines: Sequence[bytes]) -> bool:
    """Whether every line is plain: no backslash, tab or carriage return, no space before a
    colon, and no new line but at its end. Joined, the lines hold every text each holds
    (and perhaps one more across two of them: then the answer is only a needless no)."""
    text = b"".join(lines)
    # One-byte searches are memchr; `" :"` is the one two-byte search (spaces are common).
    if b"\\" in text or b"\t" in text or b"\r" in text or b" :" in text:
        return False
    return text.count(b"\n") == sum(line[-1:] == b"\n" for line in lines)


def _repeated_key(raw: bytes, record: Record, plain: bool) -> str | None:
    """The path of a key some object of the line gives twice, or None."""
    if plain or plain_lines((raw,)):
        keys = len(_top_level.decode(raw))
        if isinstance(record, UsageRecord):
            if record.attributes:
                keys += len(record.attributes)
            if record.usage:
                keys += _keys_within(record.usage)
        elif isinstance(record, SignalRecord) and record.attributes:
            keys += len(record.attributes)
        if keys == raw.count(b'":'):
            return None
    return _first_repeated_key(raw)


def _keys_within(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_keys_within(v) for v in value.values())
    if isinstance(value, list):
        return sum(_keys_within(v) for v in value)
    return 0


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Repeated(key)
        found[key] = value
    return found


def _first_repeated_key(raw: bytes) -> str | None:
    """Exactly: the first key the JSON object `raw` (or one within it) gives twice, by its
    path from the top (`usage.prompt_tokens_details.cached_tokens`); None when none is."""
    try:
        json.loads(raw, object_pairs_hook=_refuse_repeats)
    except _Repeated as repeated:
        key = repeated.key
    except ValueError:  # text msgspec read and `json` does not: nothing to compare
        return None
    else:
        return None
    # An object's values are decoded before the object itself: a repeat within one of them
    # was the one found, and its path goes through it.
    for name, value in _top_level.decode(raw).items():
        text = bytes(value)
        if text[:1] == b"{" and (inner := _first_repeated_key(text)) is not None:
            return f"{name}.{inner}"
        if text[:1] == b"[" and _has_repeats(text):
            return f"{name}[...].{key}"
    return key


def _has_repeats(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_refuse_repeats)
    except _Repeated:
        return True
    except ValueError:
        return False
    return False


def _decode_usage_v2(data: bytes | str, line: int | None) -> Record:
    try:
        return _usage_v2_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if not str(exc).endswith("at `$.record`"):
            raise _record_error(exc, line) from None
    # Another kind of record, whose field order put the version-2 field before its kind.
    try:
        return _any_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _record_error(exc, line) from None


def _kind_of(data: bytes | str) -> object:
    """The line's `record` field (usage when absent), reading nothing else."""
    try:
        return _kind_decoder.decode(data).record
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return "usage"


def record_from_dict(obj: dict[str, Any]) -> Record:
    """Validate a record given as a Python mapping (the SDK and tests use this)."""
    try:
        encoded = _encoder.encode(obj)
    except RecursionError:
        raise RecordError(too_deep_reason()) from None
    return decode_record(encoded)


def record_id(data: bytes | str) -> str | None:
    """Best-effort id of a line that failed to decode, for error reports."""
    match = re.search(
        rb'"id"\s*:\s*"([^"\\]{1,255})"', data if isinstance(data, bytes) else data.encode()
    )
    return match.group(1).decode("utf-8", "replace") if match else None
