"""The store contract is the one the code relies on: every public method of the backend
belongs to exactly one role protocol, and every role member is implemented."""

from __future__ import annotations

import inspect

from payoff.store import SqliteStore
from payoff.store.protocol import ROLES, Store


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


def test_every_public_method_of_the_backend_is_in_exactly_one_role() -> None:
    owners: dict[str, list[str]] = {}
    for role in ROLES:
        for name in _members(role):
            owners.setdefault(name, []).append(role.__name__)
    assert {name: roles for name, roles in owners.items() if len(roles) > 1} == {}
    assert _public_methods(SqliteStore) - owners.keys() == set()


def test_every_role_member_is_implemented_with_the_same_parameters() -> None:
    for role in ROLES:
        for name in _members(role):
            declared = inspect.signature(getattr(role, name))
            implemented = inspect.signature(getattr(SqliteStore, name))
            assert list(declared.parameters) == list(implemented.parameters), (role, name)


def test_the_store_protocol_is_every_role() -> None:
    assert set(Store.__mro__) >= set(ROLES)
