"""Outcome contract use cases: apply, find, list and show contract versions, and resolve
the contracts plans name.

A contract version is immutable, as a plan version is: applying the same body twice is a
no-op, another body under the same (id, version) is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from payoff.contract_files import contract_from_body, load_contract, parse_contract
from payoff.core.canonical import digest
from payoff.core.contracts import Contract, duration_words
from payoff.core.errors import NotFound, Refused
from payoff.core.versions import MAX_VERSION, version_of
from payoff.service.clock import now_us
from payoff.store.contracts import ContractConflict, StoredContract
from payoff.store.protocol import ContractStore


class ContractRequestError(Refused):
    """A contract request that cannot be carried out; the message says why."""


class ContractNotFound(NotFound, ContractRequestError):
    """No contract with that id, or no such version of it."""


def apply_contract(store: ContractStore, path: str | Path) -> tuple[Contract, bool]:
    """Store a contract file's version: (contract, whether it is new)."""
    return _apply(store, *load_contract(path))


def apply_contract_text(store: ContractStore, text: str, source: str) -> tuple[Contract, bool]:
    """As apply_contract, from a contract's YAML text."""
    return _apply(store, *parse_contract(text, source))


def _apply(store: ContractStore, contract: Contract, body: dict[str, Any]) -> tuple[Contract, bool]:
    try:
        created = store.put_contract(
            contract.id, contract.version, contract.outcome, body, digest(body), now_us()
        )
    except ContractConflict as exc:
        raise _judge_moved(store, contract, body) or exc from None
    return contract, created


def _judge_moved(
    store: ContractStore, contract: Contract, body: dict[str, Any]
) -> ContractConflict | None:
    """The refusal in plain words when the stored version differs only in where its judge
    runs: a `./` path is taken from the contract file's directory, so the same file applied
    from another directory names another program, which the stored version does not run."""
    stored = store.get_contract(contract.id, contract.version)
    if stored is None:
        return None
    ours, theirs = _judge_command(body), _judge_command(stored.body)
    if ours == theirs or _without_command(body) != _without_command(stored.body):
        return None
    return ContractConflict(
        f"contract {contract.id}@{contract.version} exists with a different judge: the stored "
        f"version runs {' '.join(theirs)}, this file's runs {' '.join(ours)} (a ./ path is taken "
        f"from the contract file's directory); apply it from the directory it was applied from, "
        f"or as version {contract.version + 1}"
    )


def _without_command(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its judge's command left out, all else (the judge's timeout, kind and
    the rest of the verification) kept, so only the command may differ."""
    verification = dict(body.get("verification") or {})
    verification["judge"] = {
        k: v for k, v in (verification.get("judge") or {}).items() if k != "command"
    }
    return {**body, "verification": verification}


def _judge_command(body: dict[str, Any]) -> list[str]:
    judge = (body.get("verification") or {}).get("judge") or {}
    return list(judge.get("command") or [])


def split_reference(reference: str) -> tuple[str, int | None]:
    """`ID` (the latest version) or `ID@VERSION`."""
    contract_id, _, version = reference.rpartition("@") if "@" in reference else (reference, "", "")
    number = version_of(version) if version else None
    if version and number is None:
        raise ContractRequestError(
            f"contract version must be a number from 1 to {MAX_VERSION:,}, got {reference!r}"
        )
    return contract_id, number


def find_contract(store: ContractStore, reference: str) -> StoredContract:
    """A contract by `ID` (its latest version) or `ID@VERSION`."""
    found = store.get_contract(*split_reference(reference))
    if found is None:
        raise ContractNotFound(
            f"no contract {reference!r}; apply it with `payoff contracts apply FILE`"
        )
    return found


class ContractBook:
    """Contracts by reference (ID@VERSION), read from the store once each: a contract
    version never changes, so a lookup may be kept as long as the store is open."""

    def __init__(self, store: ContractStore) -> None:
        self.store = store
        self._found: dict[str, Contract | None] = {}

    def __call__(self, reference: str) -> Contract | None:
        if reference not in self._found:
            contract_id, version = split_reference(reference)
            stored = self.store.get_contract(contract_id, version) if version else None
            self._found[reference] = None if stored is None else contract_from_body(stored.body)
        return self._found[reference]


def contract_json(stored: StoredContract) -> dict[str, Any]:
    """A contract version as listed (HTTP and `payoff contracts list --json`)."""
    contract = contract_from_body(stored.body)
    return {
        "id": stored.id,
        "version": stored.version,
        "outcome": stored.outcome,
        "unit": {"singular": contract.unit.singular, "plural": contract.unit.plural},
        "rule": rule_words(contract),
        "evidence": list(contract.evidence),
        "digest": stored.digest,
        "body": stored.body,
    }


def rule_words(contract: Contract) -> str:
    """The verification rule in a few words: "confirm; assume after 24h; ..."."""
    rule = contract.rule
    parts = ["confirm"] if rule.confirm else []
    if rule.inactivity_us is not None:
        parts.append(f"after {duration_words(rule.inactivity_us)} inactive")
    if rule.judge is not None:
        parts.append("judge")
    if rule.assume_after_us is not None:
        parts.append(f"assume after {duration_words(rule.assume_after_us)}")
    if rule.follow_up:
        parts.append("follow-up " + ", ".join(rule.follow_up))
    if rule.audit_rate:
        parts.append(f"audit {rule.audit_rate}")
    if rule.warranty_us is not None:
        parts.append(f"warranty {duration_words(rule.warranty_us)}")
    return "; ".join(parts) or "counts when claimed"


def list_contracts(store: ContractStore) -> list[dict[str, Any]]:
    """Every contract version, by id and version."""
    return [contract_json(stored) for stored in store.list_contracts()]


def show_contract(store: ContractStore, reference: str) -> dict[str, Any]:
    """One contract version (`ID` for the latest, or `ID@VERSION`), body included."""
    return contract_json(find_contract(store, reference))
