"""Record ids made at the call site: time-ordered, so a resend is a duplicate, never a double count.

The layout is UUIDv7's (RFC 9562): a 48-bit Unix timestamp in milliseconds, then a 12-bit
sequence and 62 random bits. Ids made in one process are strictly increasing: within one
millisecond the sequence counts up (from a random start), and when it runs out the
timestamp is moved one millisecond on. Time-ordered ids keep the ledger's unique index
appending at its end (a random-UUID index costs 2-4x, see DESIGN.md).
"""

from __future__ import annotations

import os
import threading
import time

_SEQUENCE_MAX = 0xFFF
_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def _new_lock_in_forked_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent's thread may have held it at fork()


os.register_at_fork(after_in_child=_new_lock_in_forked_child)


def _next_ms_and_sequence() -> tuple[int, int]:
    global _last_ms, _sequence
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            # A random start in the lower half leaves room to count up within the millisecond.
            _last_ms, _sequence = now_ms, int.from_bytes(os.urandom(2)) & 0x7FF
        elif _sequence < _SEQUENCE_MAX:
            _sequence += 1
        else:
            _last_ms, _sequence = _last_ms + 1, 0
        return _last_ms, _sequence


def uuid7() -> str:
    """A UUIDv7 string, strictly increasing within this process."""
    unix_ms, sequence = _next_ms_and_sequence()
    random_bits = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (sequence << 64) | (0b10 << 62) | random_bits
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_id(prefix: str) -> str:
    """`prefix` + "_" + a UUIDv7, e.g. evt_019a3c5e-...: the kind is readable in the ledger."""
    return f"{prefix}_{uuid7()}"
