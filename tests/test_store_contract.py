"""The store contract is the one the code relies on: every public method of each backend
belongs to exactly one role protocol, and every role member is implemented.

What the roles promise is tested through the `store` fixture (tests/conftest.py), which every
test that takes it runs on each backend in turn, SQLite and PostgreSQL: test_store.py,
test_ingest.py, test_billing.py and the others are the contract's behaviour.
"""

from __future__ import annotations

import inspect

import pytest

from payoff.store import SqliteStore
from payoff.store.postgres.store import PostgresStore
from payoff.store.protocol import ROLES, Store

BACKENDS = pytest.mark.parametrize(
    "backend", [SqliteStore, PostgresStore], ids=lambda c: c.__name__
)


def _members(protocol: type) -> set[str]:
    return {
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    }


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@BACKENDS
def test_every_public_method_of_the_backend_is_in_exactly_one_role(backend: type) -> None:
    owners: dict[str, list[str]] = {}
    for role in ROLES:
        for name in _members(role):
            owners.setdefault(name, []).append(role.__name__)
    assert {name: roles for name, roles in owners.items() if len(roles) > 1} == {}
    assert _public_methods(backend) - owners.keys() == set()


@BACKENDS
def test_every_role_member_is_implemented_with_the_same_parameters(backend: type) -> None:
    for role in ROLES:
        for name in _members(role):
            declared = inspect.signature(getattr(role, name))
            implemented = inspect.signature(getattr(backend, name))
            assert list(declared.parameters) == list(implemented.parameters), (role, name)


def test_the_store_protocol_is_every_role() -> None:
    assert set(Store.__mro__) >= set(ROLES)
