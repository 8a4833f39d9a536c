"""Who may do what: API keys with scopes, and customers' webhook secrets.

Scopes: `admin` (everything), `ingest` (write records only), `customer:<id>` (read that
customer's own usage, tasks, outcomes and invoices, and send its signed verdicts). A key is
shown once, when created; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payoff.core.errors import NotFound, Refused
from payoff.core.periods import US_PER_SECOND, iso_from_us
from payoff.service.clock import now_us
from payoff.store.protocol import AccessStore

if TYPE_CHECKING:
    from payoff.store.access import StoredKey

ADMIN = "admin"
INGEST = "ingest"
CUSTOMER_PREFIX = "customer:"
KEY_PREFIX = "pyk_"
SECRET_PREFIX = "whsec_"
DEFAULT_SECRET_OVERLAP_S = 24 * 3600
"""After a rotation, the previous webhook secret keeps working this long (senders catch up)."""
MAX_SECRET_OVERLAP_S = 30 * 24 * 3600


class AccessError(Refused):
    """A key or secret request is not valid (an unknown scope, customer or key)."""


class CustomerNotFound(NotFound, AccessError):
    """No customer with that id."""


class KeyNotFound(NotFound, AccessError):
    """No API key with that id."""


@dataclass(frozen=True)
class Principal:
    """The caller a valid key stands for."""

    key_id: str
    scope: str

    @property
    def is_admin(self) -> bool:
        return self.scope == ADMIN

    @property
    def customer(self) -> str | None:
        """The one customer this key may read, or None for admin and ingest keys."""
        return self.scope.removeprefix(CUSTOMER_PREFIX) if self.is_customer else None

    @property
    def is_customer(self) -> bool:
        return self.scope.startswith(CUSTOMER_PREFIX)

    def may_read(self, customer: str) -> bool:
        return self.is_admin or self.customer == customer


def _known_customer(store: AccessStore, customer: str) -> None:
    if not store.customer_exists(customer):
        raise CustomerNotFound(
            f"no customer {customer!r}; add it first with `payoff customers add {customer}`"
        )


def check_scope(store: AccessStore, scope: str) -> str:
    if scope in (ADMIN, INGEST):
        return scope
    if scope.startswith(CUSTOMER_PREFIX):
        customer = scope.removeprefix(CUSTOMER_PREFIX)
        if not 1 <= len(customer) <= 255:
            raise AccessError("scope customer:ID needs a customer id of 1-255 characters")
        _known_customer(store, customer)
        return scope
    raise AccessError(f"unknown scope {scope!r}; use admin, ingest or customer:ID")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: AccessStore, scope: str, name: str | None = None) -> tuple[StoredKey, str]:
    """A new key: its stored description and the key itself, which is never shown again."""
    scope = check_scope(store, scope)
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    created = now_us()
    store.add_key(key_id, _digest(key), scope, name, created)
    from payoff.store.access import StoredKey  # SQLAlchemy: loaded when a key is made

    return StoredKey(key_id, scope, name, created, None), key


def list_keys(store: AccessStore) -> list[StoredKey]:
    return store.list_keys()


def key_json(key: StoredKey) -> dict[str, Any]:
    """One key (never the key itself), the same for the CLI and the HTTP API."""
    return {
        "id": key.id,
        "scope": key.scope,
        "name": key.name,
        "created_at": iso_from_us(key.created_at_us),
        "revoked_at": None if key.revoked_at_us is None else iso_from_us(key.revoked_at_us),
    }


def revoke_key(store: AccessStore, key_id: str) -> None:
    if not store.revoke_key(key_id, now_us()):
        raise KeyNotFound(f"no key {key_id!r} (see `payoff keys list`)")


def authenticate(store: AccessStore, key: str) -> Principal | None:
    """The caller a presented key stands for, or None when it is unknown or revoked."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    stored: StoredKey | None = store.key_by_hash(_digest(key))
    if stored is None or stored.revoked_at_us is not None:
        return None
    return Principal(stored.id, stored.scope)


def rotate_secret(
    store: AccessStore, customer: str, overlap_s: int = DEFAULT_SECRET_OVERLAP_S
) -> str:
    """A new webhook secret for `customer`; the previous one keeps working for `overlap_s`."""
    if not 0 <= overlap_s <= MAX_SECRET_OVERLAP_S:
        raise AccessError(f"overlap must be between 0 and {MAX_SECRET_OVERLAP_S} seconds")
    _known_customer(store, customer)
    secret = SECRET_PREFIX + secrets.token_hex(32)
    now = now_us()
    store.add_secret(customer, secret, now, now + overlap_s * US_PER_SECOND)
    return secret


def current_secrets(store: AccessStore, customer: str) -> list[str]:
    return [stored.secret for stored in store.secrets(customer, now_us())]


KEY_CACHE_SECONDS = 1.0
MAX_CACHED_KEYS = 10_000


class KeyCache:
    """Keys found valid in the last KEY_CACHE_SECONDS, so most requests skip the lookup.

    A key revoked through this server process stops at once (the cache is cleared); one
    revoked elsewhere (`payoff keys revoke`, another worker) stops within the second.
    Unknown keys are never cached, so guessing cannot fill memory.
    """

    def __init__(self) -> None:
        self._valid: dict[str, tuple[Principal, float]] = {}

    def principal(self, store: AccessStore, key: str) -> Principal | None:
        now = time.monotonic()
        cached = self._valid.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = authenticate(store, key)
        if found is None:
            self._valid.pop(key, None)
            return None
        if len(self._valid) >= MAX_CACHED_KEYS:
            self._valid.clear()
        self._valid[key] = (found, now + KEY_CACHE_SECONDS)
        return found

    def clear(self) -> None:
        self._valid.clear()
