"""The outcome commands: list outcomes, decide on them, and the integrity report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from payoff.cli import Settings, app, emit_json, err, out
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show
from payoff.core.statuses import OUTCOME_STATUSES

if TYPE_CHECKING:
    from payoff.service import integrity

outcomes_app = typer.Typer(
    help="Outcome claims: their status, and verdicts on them.", no_args_is_help=True
)
app.add_typer(outcomes_app, name="outcomes")


OUTCOME_COLUMNS = (
    Column("id", "Outcome", "id"),
    Column("customer", "Customer", "id"),
    Column("type", "Type", "id"),
    Column("value", "Value", "exact"),
    Column("status", "Status", "id"),
    Column("by", "Decided by", "id"),
    Column("verification", "Verification", "id"),
)


@outcomes_app.command("list")
def outcomes_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only this status: claimed, verified, rejected, reversed.")
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    as_json: AsJson = False,
) -> None:
    """List outcome claims with their status as of now, and the steps that led there."""
    from payoff.service import outcomes as service
    from payoff.service.outcomes import MAX_OUTCOMES_LISTED

    settings: Settings = ctx.obj
    if status is not None and status not in OUTCOME_STATUSES:
        raise typer.BadParameter(
            f"--status is one of {', '.join(OUTCOME_STATUSES)}, got {status!r}"
        )
    found = service.list_states(settings.store(create=False), customer, status)
    if len(found) >= MAX_OUTCOMES_LISTED:
        err.print(f"showing the first {MAX_OUTCOMES_LISTED:,} outcomes; filter by --customer")
    if as_json:
        emit_json([state.as_json() for state in found])
        return
    rows = [{**row, "by": row["steps"][-1]["by"]} for row in (s.as_json() for s in found)]
    show(out, "Outcomes", OUTCOME_COLUMNS, [cells(row, OUTCOME_COLUMNS) for row in rows])


def _decision(action: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        outcome_id: Annotated[str, typer.Argument(help="The outcome id.")],
        by: Annotated[str, typer.Option(help="Who decides: auditor.")] = "auditor",
        reason: Annotated[str | None, typer.Option(help="Why, kept with the verdict.")] = None,
    ) -> None:
        from payoff.service import outcomes as service

        settings: Settings = ctx.obj
        state = service.decide(settings.store(create=False), outcome_id, action, by, reason)
        out.print(f"outcome {outcome_id} {state.lifecycle.status}", markup=False)

    command.__doc__ = help_text
    outcomes_app.command(action)(command)


_decision("verify", "Verify a claim (an auditor's verdict).")
_decision("reject", "Reject a claim (an auditor's verdict).")
_decision("reverse", "Reverse a verified outcome within its warranty (credited back).")


@outcomes_app.command("judge")
def outcomes_judge(
    ctx: typer.Context,
    outcome_id: Annotated[
        str | None, typer.Argument(help="One outcome; without it, every pending claim due.")
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's claims.")] = None,
    as_json: AsJson = False,
) -> None:
    """Run the judge their contract names on pending claims that are due, and keep its
    verdicts. A judge that fails or times out leaves its claim pending (exit status 1)."""
    from payoff.service import judges

    settings: Settings = ctx.obj
    store = settings.store(create=False)
    if outcome_id is not None:
        state = judges.judge_outcome(store, outcome_id)
        step = state.lifecycle.last_step
        out.print(f"outcome {outcome_id} {state.lifecycle.status}: {step.reason}", markup=False)
        return
    run = judges.judge_pending(store, customer)
    if as_json:
        emit_json(run.as_json())
    else:
        for state in run.judged:
            reason = state.lifecycle.last_step.reason
            out.print(
                f"outcome {state.outcome.id} {state.lifecycle.status}: {reason}", markup=False
            )
        for outcome, why in {**run.waiting, **run.failed}.items():
            err.print(f"outcome {outcome}: {why}", markup=False)
    if run.failed:
        raise typer.Exit(1)


@outcomes_app.command("show")
def outcomes_show(
    ctx: typer.Context,
    outcome_id: Annotated[str, typer.Argument(help="The outcome id.")],
    as_json: AsJson = False,
) -> None:
    """One outcome, its steps, and the evidence opened to it while it is shown: kept by its
    contract (`retain_evidence`), or held for the auditor of a claim in the audit sample
    until the auditor decides."""
    import json

    from payoff.service import evidence

    settings: Settings = ctx.obj
    shown = evidence.show_outcome(settings.store(create=False), outcome_id)
    if as_json:
        emit_json(shown)
        return

    def say(text: str) -> None:
        out.print(text, markup=False)

    say(f"outcome {shown['id']} ({shown['type']}, customer {shown['customer']}, task "
        f"{shown['task']}): {shown['status']}"
        + (" (in the audit sample)" if shown["audited"] else ""))  # fmt: skip
    for step in shown["steps"]:
        why = f": {step['reason']}" if step["reason"] else ""
        say(f"  {step['at']}  {step['status']} by {step['by']}{why}")
    opened = shown["evidence"]
    if opened is None:
        say("evidence: none shown (not opened, or not kept by its contract)")
        return
    held = " (held for the audit)" if opened["held_for_audit"] else " (retained)"
    say(f"evidence opened by {opened['opened_by']} at {opened['opened_at']}{held}:")
    say(json.dumps(opened["evidence"], indent=2, sort_keys=True))


@outcomes_app.command("evidence")
def outcomes_evidence(
    ctx: typer.Context,
    outcome_id: Annotated[str, typer.Argument(help="The outcome id.")],
    file: Annotated[
        Path, typer.Argument(help='JSON: {"evidence": {...}, "salt": "..."}, as committed.')
    ],
    as_json: AsJson = False,
) -> None:
    """Open an outcome's committed evidence: checked against its commitment (a mismatch is
    refused and flagged), then passed to the judge its contract names."""
    import json

    from payoff.service import evidence

    settings: Settings = ctx.obj
    try:
        opened = json.loads(file.read_bytes())
        given, salt = opened["evidence"], opened["salt"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise typer.BadParameter(f'{file}: JSON with "evidence" and "salt" ({exc})') from None
    answer = evidence.open_evidence(settings.store(create=False), outcome_id, given, salt, "cli")
    if as_json:
        emit_json(answer)
        return
    status = answer["outcome"]["status"]
    judge = answer["judge"]
    said = (
        "" if judge is None else f"; judge: {judge['verdict'] or 'no verdict'} ({judge['reason']})"
    )
    out.print(f"outcome {outcome_id} evidence matched; {status}{said}", markup=False)


@app.command("integrity")
def integrity_report(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="The period, YYYY-MM.")],
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    thresholds: Annotated[
        Path | None, typer.Option(help="YAML file of flag thresholds (see docs/outcomes.md).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Can the outcome counts be trusted? Rates per customer and outcome type, and flags."""
    from payoff.service import integrity

    settings: Settings = ctx.obj
    limits = integrity.load_thresholds(thresholds)
    rows = integrity.report(settings.store(create=False), period, customer, limits)
    if as_json:
        emit_json([row.as_json() for row in rows])
        return
    print_report(rows)


INTEGRITY_COLUMNS = (
    Column("customer", "Customer", "id"),
    Column("outcome_type", "Outcome", "id"),
    Column("claims", "Claims", "count"),
    Column("verified", "Verified", "count"),
    Column("rejected", "Rejected", "count"),
    Column("reversed", "Reversed", "count"),
    Column("pending", "Pending", "count"),
    Column("deemed", "Deemed", "count"),
    Column("outcome_rate", "Claims per task", "ratio"),
    Column("outcome_rate_change", "Change", "change"),
    Column("flags", "Flags"),
)


def print_report(rows: list[integrity.Row]) -> None:
    shown = []
    for row in rows:
        data = row.as_json()
        flags = ", ".join(flag["name"] for flag in data["flags"]) or "-"
        shown.append(cells({**data, "flags": flags}, INTEGRITY_COLUMNS))
    show(out, "Outcome integrity", INTEGRITY_COLUMNS, shown, keys=2)
    for row in rows:
        for flag in row.flags:
            out.print(
                f"FLAG {flag.name} {row.customer} {row.outcome_type}: {flag.why}",
                markup=False,
                highlight=False,
            )
