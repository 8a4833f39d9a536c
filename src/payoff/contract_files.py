"""Outcome contract files (YAML) to validated, immutable `Contract` values and their
canonical bodies.

See docs/contracts.md for the format. Unknown fields are errors; every error names the file
and the field.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import yaml

from payoff.core.contracts import (
    DEFAULT_JUDGE_TIMEOUT,
    Contract,
    Judge,
    Rule,
    Unit,
    parse_duration,
)
from payoff.core.errors import Refused
from payoff.nesting import too_deep_reason
from payoff.plan_files import DecimalLoader, TooDeep


class ContractError(Refused):
    """A contract file is malformed or invalid; the message names the file and field."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class UnitFile(_Strict):
    singular: str
    plural: str


class JudgeFile(_Strict):
    command: list[str] | None = None
    url: str | None = None
    timeout: str = DEFAULT_JUDGE_TIMEOUT


class VerificationFile(_Strict):
    confirm: bool = False
    assume_after: str | None = None
    follow_up: list[str] = []
    inactivity: str | None = None
    judge: JudgeFile | None = None
    audit: Decimal = Decimal(0)
    warranty: str | None = None


class ContractFile(_Strict):
    id: str
    version: int
    outcome: str
    unit: UnitFile
    verification: VerificationFile = msgspec.field(default_factory=VerificationFile)
    evidence: list[str] = []
    retain_evidence: bool = False
    description: str | None = None

    def to_contract(self) -> Contract:
        """The value; ValueError names the field whose duration is malformed."""
        v = self.verification
        judge = None
        if v.judge is not None:
            judge = Judge(
                command=tuple(v.judge.command or ()),
                url=v.judge.url,
                timeout_us=_duration(v.judge.timeout, "verification.judge.timeout") or 0,
            )
        rule = Rule(
            confirm=v.confirm,
            assume_after_us=_duration(v.assume_after, "verification.assume_after"),
            follow_up=tuple(v.follow_up),
            inactivity_us=_duration(v.inactivity, "verification.inactivity"),
            judge=judge,
            audit_rate=v.audit,
            warranty_us=_duration(v.warranty, "verification.warranty"),
        )
        return Contract(
            id=self.id,
            version=self.version,
            outcome=self.outcome,
            unit=Unit(self.unit.singular, self.unit.plural),
            rule=rule,
            evidence=tuple(self.evidence),
            retain_evidence=self.retain_evidence,
            description=self.description,
        )


def _duration(text: str | None, field: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ContractError(f"{field}: {exc}") from None


_IN_VERIFICATION = ("confirm", "assume_after", "follow_up", "inactivity", "judge", "audit")


def _where(message: str) -> str:
    """msgspec says `$.verification.judge`; say `verification.judge`."""
    return message.replace("`$.", "`")


def parse_contract(
    data: bytes | str, source: str = "contract", directory: Path | None = None
) -> tuple[Contract, dict[str, Any]]:
    """A validated Contract and its canonical body (the JSON that `(id, version)` names).

    With `directory` (the contract file's), each argument of a judge's command that starts
    with `./` or `../` is made an absolute path from it: the command then runs the same
    from any working directory."""
    loaded: Any = None
    try:
        loaded = yaml.load(data, Loader=DecimalLoader)
        parsed = msgspec.convert(loaded, type=ContractFile)
    except TooDeep:
        raise ContractError(f"{source}: {too_deep_reason()}") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"{source}: not valid YAML ({exc})") from None
    except msgspec.ValidationError as exc:
        raise ContractError(f"{source}: {_where(str(exc))}{_hint(loaded)}") from None
    except RecursionError:
        raise ContractError(f"{source}: {too_deep_reason()}") from None
    except UnicodeError:
        raise ContractError(f"{source}: holds text that is not valid Unicode") from None
    judge = parsed.verification.judge
    if directory is not None and judge is not None and judge.command:
        judge.command = [_from(directory, argument) for argument in judge.command]
    try:
        contract = parsed.to_contract()
    except ContractError as exc:
        raise ContractError(f"{source}: {exc}") from None
    errors = contract.validate()
    if errors:
        raise ContractError(f"{source}: " + "; ".join(errors))
    return contract, msgspec.to_builtins(parsed)


def _from(directory: Path, argument: str) -> str:
    """A judge's argument, made absolute from the contract's directory when it starts with
    `./` or `../` (a path beside the contract); any other argument as written."""
    if argument.startswith(("./", "../")):
        return os.path.normpath(directory.resolve() / argument)
    return argument


def _hint(loaded: Any) -> str:
    """A rule written at the top level instead of under `verification:` is a common slip."""
    if isinstance(loaded, dict):
        misplaced = [name for name in _IN_VERIFICATION if name in loaded]
        if misplaced:
            return f" ({misplaced[0]!r} belongs under `verification:`)"
    return ""


def load_contract(path: str | Path) -> tuple[Contract, dict[str, Any]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ContractError(f"cannot read contract {path}: {exc.strerror}") from None
    return parse_contract(data, str(path), Path(path).parent)


def contract_from_body(body: dict[str, Any]) -> Contract:
    """A stored contract's value (its body was validated when it was applied)."""
    try:
        return msgspec.convert(body, type=ContractFile).to_contract()
    except (msgspec.ValidationError, ContractError) as exc:
        raise ContractError(f"stored contract: {exc}") from None
