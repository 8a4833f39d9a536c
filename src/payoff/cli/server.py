"""The server commands: serve, keys, and customers' webhook secrets."""

from __future__ import annotations

import enum
import os
from typing import Annotated

import typer

from payoff.api.config import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RECORDS,
    MAX_TIMEOUT_S,
    ServerConfig,
)
from payoff.cli import Settings, app, emit_json, out
from payoff.cli.billing import customers_app
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show
from payoff.extras import needs
from payoff.service import access
from payoff.service.span_timing import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_SETTLE_S, MIN_IDLE_TIMEOUT_S


class LogLevel(enum.StrEnum):
    """uvicorn's levels: `info` logs each request (the access log), `warning` only trouble."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


keys_app = typer.Typer(help="API keys for the server: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


MaxConnections = Annotated[
    int,
    typer.Option(
        help="Connections each server process serves at once (503 with Retry-After beyond).",
        min=1,
    ),
]
HeaderTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds a request's headers may take, from its first byte (408 beyond).",
        min=0.1,
        max=MAX_TIMEOUT_S,
    ),
]
BodyTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds a request's body may take, once its headers are in (408 beyond).",
        min=0.1,
        max=MAX_TIMEOUT_S,
    ),
]


def _hand_to_workers(config: ServerConfig, workers: int) -> None:
    """The settings uvicorn's worker processes read (they import the app by name)."""
    from payoff.api.workers import SUPERVISOR_PID

    os.environ.update(config.to_env())
    if workers > 1:  # each worker ends when this process does (payoff.api.workers)
        os.environ[SUPERVISOR_PID] = str(os.getpid())
    else:  # one process serves: no supervisor, whatever an inherited environment says
        os.environ.pop(SUPERVISOR_PID, None)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Server processes (each with its own writer thread).", min=1)
    ] = 1,
    max_records: Annotated[
        int, typer.Option(help="Records accepted per request (413 beyond).", min=1)
    ] = DEFAULT_MAX_RECORDS,
    max_body_bytes: Annotated[
        int, typer.Option(help="Bytes accepted per request body (413 beyond).", min=1024)
    ] = DEFAULT_MAX_BODY_BYTES,
    max_connections: MaxConnections = DEFAULT_MAX_CONNECTIONS,
    header_timeout: HeaderTimeout = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout: BodyTimeout = DEFAULT_BODY_TIMEOUT_S,
    log_level: Annotated[
        LogLevel, typer.Option(help="Least severe log lines written (to stderr).")
    ] = LogLevel.info,
    idle_timeout: Annotated[
        int,
        typer.Option(
            help="Seconds without a new span after which an OpenTelemetry conversation task "
            "closes, and a trace whose root never came is judged as it is.",
            min=MIN_IDLE_TIMEOUT_S,
            envvar="PAYOFF_IDLE_TIMEOUT",
        ),
    ] = DEFAULT_IDLE_TIMEOUT_S,
    settle_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds without a new span after which an OpenTelemetry run whose root "
            "has arrived is judged, so that a call ending after its run is judged with it; "
            "0 judges a run as its root arrives.",
            min=0,
            envvar="PAYOFF_SETTLE_SECONDS",
        ),
    ] = DEFAULT_SETTLE_S,
) -> None:
    """Run the HTTP API and OTLP receiver (docs at /docs, schema at /openapi.json)."""
    with needs("server", "payoff serve"):
        import uvicorn

        # The application's imports fail here, said plainly, rather than in a worker.
        import payoff.api.app  # noqa: F401
        from payoff.api.protocol import PROTOCOL

    settings: Settings = ctx.obj
    # uvicorn's worker processes may not start processes of their own; with several of
    # them, each decodes its own requests (and they share the cores) instead.
    builders = 0 if workers > 1 else None
    config = ServerConfig(
        settings.db,
        settings.prices,
        max_records,
        max_body_bytes,
        builders,
        idle_timeout_s=idle_timeout,
        settle_s=settle_seconds,
        busy_timeout_s=settings.busy_timeout_s(),
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
    )
    settings.store().close()  # create and migrate the ledger once, before any worker starts
    _hand_to_workers(config, workers)
    uvicorn.run(
        "payoff.api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.value,
        server_header=False,
        http=PROTOCOL,  # uvicorn's httptools protocol, with a header timeout and size bound
        limit_concurrency=max_connections,
    )


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help="admin, ingest or customer:ID.")],
    name: Annotated[str | None, typer.Option(help="A label, e.g. who uses the key.")] = None,
) -> None:
    """Create a key and print it: it is shown this once (only its hash is kept)."""
    settings: Settings = ctx.obj
    stored, key = access.create_key(settings.store(), scope, name)
    out.print(f"key {stored.id} ({stored.scope}) created; it is not shown again:", markup=False)
    out.print(key, markup=False)


KEY_COLUMNS = (
    Column("id", "Key", "id"),
    Column("scope", "Scope", "id"),
    Column("name", "Name"),
    Column("created_at", "Created at", "time"),
    Column("revoked_at", "Revoked at", "time"),
)


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List keys: id, scope, name, created, revoked (never the key itself)."""
    settings: Settings = ctx.obj
    found = access.list_keys(settings.store(create=False))
    rows = [access.key_json(key) for key in found]
    if as_json:
        emit_json(rows)
        return
    show(out, "API keys", KEY_COLUMNS, [cells(row, KEY_COLUMNS) for row in rows])


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    settings: Settings = ctx.obj
    access.revoke_key(settings.store(create=False), key_id)
    out.print(f"key {key_id} revoked", markup=False)


@customers_app.command("secret")
def customers_secret(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    overlap: Annotated[
        int,
        typer.Option(
            help="Seconds the previous secret keeps working, while the customer switches.",
            min=0,
            max=access.MAX_SECRET_OVERLAP_S,
        ),
    ] = access.DEFAULT_SECRET_OVERLAP_S,
) -> None:
    """Rotate a customer's webhook secret (signs its verdicts) and print it once."""
    settings: Settings = ctx.obj
    secret = access.rotate_secret(settings.store(create=False), customer, overlap)
    out.print(f"new webhook secret for {customer}; it is not shown again:", markup=False)
    out.print(secret, markup=False)
