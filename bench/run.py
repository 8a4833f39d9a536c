"""`make bench`: measure the issue's performance targets and write bench/RESULTS.md.

    python -m bench.run              # 1,000,000 records, 3 repeats of each measurement
    python -m bench.run --quick      # 100,000 records, 1 repeat (writes bench/.work/)
    python -m bench.run --records N

Machines are shared and noisy, so every figure that has a target is a ratio against a
baseline measured in the same run, from medians of the repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sqlite3
import statistics
import subprocess
from importlib import metadata
from pathlib import Path

from bench import (
    costing,
    economics,
    ingest,
    invoice_scale,
    postgres,
    rating,
    recost,
    sdk,
    server,
    startup,
    workload,
)

RESULTS = Path(__file__).parent / "RESULTS.md"
QUICK_RESULTS = workload.WORK / "RESULTS-quick.md"
PACKAGES = (
    "payoff", "genai-prices", "msgspec", "sqlalchemy", "alembic", "typer", "fastapi", "uvicorn",
)  # fmt: skip
SAMPLE_SIZE = 2_000
INGEST_RATIO_MIN = 0.5
RANDOM_INGEST_RATIO_MIN = 1.0
RATING_RATIO_MAX = 2.0
PEAK_RSS_MAX_BYTES = 300 * 10**6
COSTING_RATIO_MIN = 50
SERVER_RATE_MIN = 100_000
SERVER_RATIO_MIN = 0.5
SERVER_P99_MAX_MS = 10


def log(message: str) -> None:
    print(message, flush=True)


def _first(path: str, key: str, separator: str, default: str = "unknown") -> str:
    """The value of the first `key<separator>value` line of a /proc or /etc file."""
    try:
        with open(path) as lines:
            for line in lines:
                name, found, value = line.partition(separator)
                if found and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return default


def _commit() -> str:
    try:
        git = ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"]
        return subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> list[tuple[str, str]]:
    memory_kib = int(_first("/proc/meminfo", "MemTotal", ":", "0 kB").split()[0])
    os_name = _first("/etc/os-release", "PRETTY_NAME", "=").strip('"')
    return [
        ("CPU", _first("/proc/cpuinfo", "model name", ":", platform.processor())),
        ("cores", f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} available to us"),
        ("RAM", f"{memory_kib / 2**20:.1f} GiB"),
        ("OS", f"{os_name}, {platform.system()} {platform.release()} {platform.machine()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("packages", ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES)),
        ("payoff commit", _commit()),
    ]


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**fail**"


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    lines = ["| metric | value | target | result |", "|---|---:|---|---|"]
    return lines + [f"| {' | '.join(row)} |" for row in rows]


def ingest_section(r: ingest.IngestResult) -> list[str]:
    peak = max(r.peak_rss_bytes)
    return [
        f"## Ingest: `payoff ingest` of {r.records:,} usage records (JSON Lines)",
        "",
        *_table(
            [
                ("payoff ingest", f"{r.payoff_rate:,.0f} events/s", "", ""),
                ("bare sqlite3 executemany", f"{r.bare_rate:,.0f} events/s", "", ""),
                (
                    "payoff / bare",
                    f"{r.ratio:.2f}",
                    f"≥ {INGEST_RATIO_MIN}",
                    _verdict(r.ratio >= INGEST_RATIO_MIN),
                ),
                (
                    "peak RSS of payoff, all its processes summed (max of repeats)",
                    f"{peak / 1e6:.0f} MB",
                    f"< {PEAK_RSS_MAX_BYTES // 10**6} MB",
                    _verdict(peak < PEAK_RSS_MAX_BYTES),
                ),
            ]
        ),
        "",
        f"Method: `payoff --db FRESH ingest FILE --json` as a child process, wall time from start "
        f"to exit (startup, migrations, parsing, costing, writing: payoff builds batches in one "
        f"worker process while it writes), accepted count checked; peak RSS is the larger of the "
        f"summed VmRSS of payoff and its worker, sampled every 20 ms (pages the forked worker "
        f"shares are counted twice, so this is an upper bound), and the main process's own "
        f"`ru_maxrss` (MB = 10^6 bytes; the parent's own peak, "
        f"{r.parent_peak_rss_bytes / 1e6:.0f} MB, is a floor under that on Linux). Bare: the "
        f"same rows, built beforehand by payoff's RowBuilder in another process, inserted with "
        f"`executemany` into a fresh file holding the ledger's own `events` DDL (same columns, "
        f"`UNIQUE (id)`), WAL, `synchronous=FULL`, one transaction per "
        f"{ingest_batch():,} rows as payoff, closing included. {len(r.payoff_seconds)} "
        f"alternating repeat(s), medians. Seconds: payoff "
        f"{_seconds(r.payoff_seconds)}; bare {_seconds(r.bare_seconds)}.",
    ]


RANDOM_INGEST_HEADING = "## Ingest with random ids"
INVOICE_SCALE_HEADING = "## Invoice runs as the month grows"
POSTGRES_INVOICE_SCALE_HEADING = "## PostgreSQL: invoice runs as the month grows"


def random_ingest_section(r: ingest.IngestResult, measured: str = "") -> list[str]:
    """The section; `measured` says when and how, if not with the rest of the file."""
    from payoff.service.ingest import FILE_COMMIT_ROWS  # imported once the ingest runs are over

    peak = max(r.peak_rss_bytes)
    return [
        f"{RANDOM_INGEST_HEADING}: `payoff ingest` of {r.records:,} usage records",
        "",
        *_table(
            [
                ("payoff ingest", f"{r.payoff_rate:,.0f} events/s", "", ""),
                ("bare sqlite3 executemany", f"{r.bare_rate:,.0f} events/s", "", ""),
                (
                    "payoff / bare",
                    f"{r.ratio:.2f}",
                    f"≥ {RANDOM_INGEST_RATIO_MIN}",
                    _verdict(r.ratio >= RANDOM_INGEST_RATIO_MIN),
                ),
                (
                    "peak RSS of payoff (max of repeats)",
                    f"{peak / 1e6:.0f} MB",
                    f"< {PEAK_RSS_MAX_BYTES // 10**6} MB",
                    _verdict(peak < PEAK_RSS_MAX_BYTES),
                ),
            ]
        ),
        "",
        *([measured, ""] if measured else []),
        f"Method: as the ingest above, on the same records with other ids "
        f"(bench/workload.py): {workload.ID_KINDS['random']}. payoff commits every "
        f"{FILE_COMMIT_ROWS:,} rows of a file, and inserts each batch's events in the order "
        f"of their ids. Bare: the same rows, in the file's order, into a table "
        f"with a unique text id column (the ledger's `events` DDL), WAL, `synchronous=FULL` "
        f"as payoff, default settings otherwise, {ingest_batch():,} rows a transaction. "
        f"{len(r.payoff_seconds)} alternating repeat(s), medians. Seconds: payoff "
        f"{_seconds(r.payoff_seconds)}; bare {_seconds(r.bare_seconds)}.",
    ]


def invoice_scale_section(r: invoice_scale.InvoiceScaleResult, measured: str = "") -> list[str]:
    """The section; `measured` says when and how, if not with the rest of the file."""
    small, large = r.sizes[0], r.sizes[-1]
    peak = max(max(values) for values in r.peak_rss_bytes.values())
    rows = [
        (f"invoice run, {size:,} events (median)", f"{r.median(size):.2f} s", "", "")
        for size in r.sizes
    ]
    rows.append(
        (
            f"{large:,} / {small:,}",
            f"{r.ratio:.2f}x",
            f"≤ {invoice_scale.TARGET_RATIO}x",
            _verdict(r.ratio <= invoice_scale.TARGET_RATIO),
        )
    )
    rows.append(
        (
            "peak RSS of `payoff invoice run` (max)",
            f"{peak / 1e6:.0f} MB",
            f"< {PEAK_RSS_MAX_BYTES // 10**6} MB",
            _verdict(peak < PEAK_RSS_MAX_BYTES),
        )
    )
    built = ", ".join(
        f"{size:,}: {seconds:.0f} s" for size, seconds in r.build_seconds.items() if seconds > 1
    )
    on_postgres = r.backend == "PostgreSQL"
    heading = POSTGRES_INVOICE_SCALE_HEADING if on_postgres else INVOICE_SCALE_HEADING
    where = (
        "moved by `payoff copy` into a database of a throwaway PostgreSQL 15 cluster (fsync "
        "off; tests/postgres_cluster.py), each run on a clone of it"
        if on_postgres
        else "each run on a fresh copy"
    )
    return [
        f"{heading}: {small:,} and {large:,} events",
        "",
        *_table(rows),
        "",
        *([measured, ""] if measured else []),
        f"Method: the rating benchmark's ledgers ({rating.CUSTOMERS} customers on the "
        f"example plans, one with a per-task reasoning budget), {where}; `payoff invoice run "
        f"--period {workload.MONTH} --json` in a child process, wall time and peak RSS "
        f"(bench/invoice_scale.py). Sizes from `{invoice_scale.SIZES_VARIABLE}`. Building "
        f"the ledgers (not timed above): {built or 'cached'}. {len(r.seconds[small])} "
        f"alternating repeat(s), medians. Seconds: "
        + "; ".join(f"{size:,}: {_seconds(values)}" for size, values in r.seconds.items())
        + ".",
    ]


def costing_section(r: costing.CostingResult) -> list[str]:
    bulk = statistics.median(r.bulk_seconds)
    return [
        f"## Costing {r.calls:,} model calls",
        "",
        *_table(
            [
                ("payoff bulk (fresh Catalog)", f"{r.calls / bulk:,.0f} calls/s", "", ""),
                (
                    "genai_prices.calc_price per call",
                    f"{r.calls / r.reference_seconds:,.0f} calls/s",
                    "",
                    "",
                ),
                (
                    "calc_price time / payoff time",
                    f"{r.ratio:,.0f}x",
                    f"≥ {COSTING_RATIO_MIN}x",
                    _verdict(r.ratio >= COSTING_RATIO_MIN),
                ),
                (
                    f"different costs on the sample of {r.sample_size:,}",
                    f"{r.mismatches}",
                    "0",
                    _verdict(r.mismatches == 0),
                ),
                ("calls the packaged catalog cannot price", f"{r.unpriced:,}", "", ""),
            ]
        ),
        "",
        f"Method: the calls of a workload of model calls only, loaded beforehand; payoff costs "
        f"them all with `Catalog.price_table` + `PriceTable.cost_nanousd`, a fresh Catalog per "
        f"repeat so that resolving prices is timed; `calc_price` is timed on a random sample of "
        f"{r.sample_size:,} and extrapolated to {r.calls:,}, and its totals (rounded half-even to "
        f"nano-USD) must equal payoff's. {len(r.bulk_seconds)} repeat(s), medians. Seconds: payoff "
        f"{_seconds(r.bulk_seconds)}; calc_price on the sample {_seconds(r.sample_seconds)}.",
    ]


def rating_section(r: rating.RatingResult) -> list[str]:
    return [
        f"## Rating a month of {r.events:,} usage events for {r.customers} customers",
        "",
        *_table(
            [
                ("invoice run (median)", f"{statistics.median(r.payoff_seconds):.2f} s", "", ""),
                (
                    "bare SQL GROUP BY of the same aggregates (median)",
                    f"{statistics.median(r.bare_seconds):.2f} s",
                    "",
                    "",
                ),
                (
                    "invoice run / bare",
                    f"{r.ratio:.2f}x",
                    f"≤ {RATING_RATIO_MAX}x",
                    _verdict(r.ratio <= RATING_RATIO_MAX),
                ),
            ]
        ),
        "",
        f"Method: a ledger of the demo's agent work for {r.customers} customers cut to "
        f"{r.events:,} usage records (with their task and outcome records), every customer "
        f"subscribed to one of the three example plans (hybrid with a reasoning budget, "
        f"cost-plus, per-outcome). payoff: one `invoice run` of the month in process (SQL "
        f"aggregates by customer and day, rating, {r.customers} drafts stored in one "
        f"transaction). Bare: the same four aggregate queries with sqlite3, every row fetched, "
        f"nothing priced (bench/rating.py). {len(r.payoff_seconds)} alternating repeat(s), "
        f"medians. Seconds: payoff {_seconds(r.payoff_seconds)}; bare {_seconds(r.bare_seconds)}.",
    ]


ECONOMICS_HEADING = "## Simulating "


def economics_section(r: economics.EconomicsResult, measured: str = "") -> list[str]:
    """The section; `measured` says when and how, if not with the rest of the file."""
    return [
        f"{ECONOMICS_HEADING}{r.plans} plans x {r.scenarios} scenarios over {r.events:,} "
        "usage events",
        "",
        *([measured, ""] if measured else []),
        *_table(
            [
                ("simulate (median)", f"{statistics.median(r.simulate_seconds):.2f} s", "", ""),
                (
                    "one invoice run (median)",
                    f"{statistics.median(r.invoice_seconds):.2f} s",
                    "",
                    "",
                ),
                (
                    "simulate / invoice run",
                    f"{r.ratio:.2f}x",
                    f"≤ {economics.RATIO_MAX}x",
                    _verdict(r.ratio <= economics.RATIO_MAX),
                ),
                (
                    f"per plan and scenario ({r.combinations} priced)",
                    f"{r.ratio_per_combination:.2f}x",
                    "",
                    "",
                ),
            ]
        ),
        "",
        f"Method: the rating benchmark's ledger; one `simulate` of the four example plans "
        f"(cost-plus, per-task, per-outcome, hybrid) with the demo's {r.scenarios} scenarios, "
        f"the real command's work: it always prices the baseline first, so the figure covers "
        f"{r.plans} x {r.scenarios + 1} = {r.combinations} plan and scenario combinations, "
        f"not the {r.plans} x {r.scenarios} the target counts (the target is met or missed "
        f"with the baseline's cost included). Against one `invoice run` of the same month, "
        f"in process (bench/economics.py). {len(r.simulate_seconds)} alternating repeat(s), "
        f"medians. Seconds: simulate {_seconds(r.simulate_seconds)}; invoice run "
        f"{_seconds(r.invoice_seconds)}.",
    ]


def server_section(r: server.ServerResult, file_rate: float) -> list[str]:
    ratio = r.batch_rate / file_rate
    p99 = r.latency_percentile(0.99)
    return [
        "## The server: `payoff serve` over loopback HTTP",
        "",
        *_table(
            [
                (
                    f"batched ingest ({server.RECORDS_PER_REQUEST:,} records a request, "
                    f"{server.BATCH_CLIENTS} clients)",
                    f"{r.batch_rate:,.0f} events/s",
                    f"≥ {SERVER_RATE_MIN:,} events/s",
                    _verdict(r.batch_rate >= SERVER_RATE_MIN),
                ),
                (
                    "batched HTTP / `payoff ingest` of the same records from a file (above)",
                    f"{ratio:.2f}",
                    f"≥ {SERVER_RATIO_MIN}",
                    _verdict(ratio >= SERVER_RATIO_MIN),
                ),
                (
                    "single-record POST /v1/events, p50",
                    f"{r.latency_percentile(0.5):.1f} ms",
                    "",
                    "",
                ),
                (
                    "single-record POST /v1/events, p99",
                    f"{p99:.1f} ms",
                    f"≤ {SERVER_P99_MAX_MS} ms",
                    _verdict(p99 <= SERVER_P99_MAX_MS),
                ),
                (
                    "bare: one-row sqlite3 INSERT + COMMIT (WAL, FULL) on the same disk, p50 / p99",
                    f"{r.latency_percentile(0.5, bare=True):.1f} / "
                    f"{r.latency_percentile(0.99, bare=True):.1f} ms",
                    "",
                    "",
                ),
                (
                    "single-record POST right after the batched ingest, p50 / p99",
                    f"{r.latency_percentile(0.5, after_bulk=True):.1f} / "
                    f"{r.latency_percentile(0.99, after_bulk=True):.1f} ms",
                    "",
                    "",
                ),
                (
                    f"OTLP/HTTP protobuf export of {r.otlp_spans:,} GenAI spans",
                    f"{r.otlp_rate:,.0f} spans/s",
                    "",
                    "",
                ),
            ]
        ),
        "",
        f"Method: `payoff serve` (one server process, with its writer thread and one builder "
        f"process) on a fresh ledger, an ingest key; clients hold one keep-alive "
        f"`http.client` connection each, on the same two cores (batched: threads of the "
        f"benchmark process; latency: a process each, so that they do not take turns at one "
        f"interpreter lock). "
        f"Batched: the {r.records:,} records of the ingest workload as JSON Lines bodies of "
        f"{server.RECORDS_PER_REQUEST:,}, {server.BATCH_CLIENTS} clients taking the next body "
        f"as they finish, wall time from first request to last answer, every record checked "
        f"accepted. Latency: {r.latency_load}, {len(r.latencies_ms):,} requests in all, each "
        f"answered after its commit (group commit; `synchronous=FULL`), on a fresh ledger; "
        f"and the same again on the batched run's ledger right after it, while the server "
        f"copies its write-ahead log of {r.records:,} records into the database. OTLP: one "
        f"export of "
        f"{server.OTLP_TRACES:,} agent runs (an `invoke_agent` root and "
        f"{server.OTLP_SPANS_PER_TRACE - 1} chat spans each, random trace and span ids), "
        f"from the request to every run judged and written (the server's settle time "
        f"{server.SETTLE_S:g} s, polling `GET /metrics`). "
        f"{len(r.batch_seconds)} repeat(s), medians. Seconds, batched: "
        f"{_seconds(r.batch_seconds)}; OTLP: {_seconds(r.otlp_seconds)}.",
    ]


def write_economics_section(r: economics.EconomicsResult) -> Path:
    """Replace (or append) the economics section of RESULTS.md with a standalone run's."""
    measured = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on its own by "
        f"`python -m bench.economics --write` ({r.events:,} records, "
        f"{len(r.simulate_seconds)} repeat(s)), not with the other sections."
    )
    return _write_section(ECONOMICS_HEADING, economics_section(r, measured))


def write_recost_section(r: recost.RecostResult) -> Path:
    """Replace (or append) the re-pricing section of RESULTS.md with a standalone run's."""
    measured = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on its own by "
        f"`python -m bench.recost --write` ({r.events:,} records, "
        f"{len(r.recost_seconds)} repeat(s)), not with the other sections."
    )
    return _write_section(recost.HEADING, recost_section(r, measured))


def write_random_ingest_section(r: ingest.IngestResult) -> Path:
    """Replace (or append) the random-id ingest section with a standalone run's."""
    measured = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on its own by `python -m "
        f"bench.ingest --ids random --write` ({r.records:,} records, "
        f"{len(r.payoff_seconds)} repeat(s)), not with the other sections."
    )
    return _write_section(RANDOM_INGEST_HEADING, random_ingest_section(r, measured))


def write_invoice_scale_section(r: invoice_scale.InvoiceScaleResult) -> Path:
    """Replace (or append) the invoice-run scaling section with a standalone run's."""
    on_postgres = r.backend == "PostgreSQL"
    measured = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on its own by "
        f"`{invoice_scale.SIZES_VARIABLE}={','.join(map(str, r.sizes))} python -m "
        f"bench.invoice_scale{' --postgres' if on_postgres else ''} --write` "
        f"({len(r.seconds[r.sizes[0]])} repeat(s)), not with the other sections."
    )
    heading = POSTGRES_INVOICE_SCALE_HEADING if on_postgres else INVOICE_SCALE_HEADING
    return _write_section(heading, invoice_scale_section(r, measured))


def _write_section(heading: str, lines: list[str]) -> Path:
    """Replace the section of RESULTS.md that starts with `heading`, or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    before, found, rest = text.partition(f"\n{heading}")
    after = rest.partition("\n## ")[2] if found else ""  # the sections after it, if any
    section = "\n".join(lines)
    parts = [before.rstrip("\n"), section, *([f"## {after.rstrip()}"] if after else [])]
    RESULTS.write_text("\n\n".join(parts) + "\n")
    return RESULTS


def recost_section(r: recost.RecostResult, measured: str = "") -> list[str]:
    """The section; `measured` says when and how, if not with the rest of the file."""
    return [
        f"{recost.HEADING}a ledger of {r.events:,} usage events: `payoff recost --all`",
        "",
        *([measured, ""] if measured else []),
        *_table(
            [
                (f"recost --all, every one of {r.model_calls:,} model calls re-priced",
                 f"{r.rate(r.recost_seconds):,.0f} steps/s", "", ""),
                ("the same, per step", f"{r.per_call_us:.1f} µs", "", ""),
                ("recost --all again: nothing to change",
                 f"{r.rate(r.idle_seconds):,.0f} steps/s", "", ""),
                ("bare costing in memory (Catalog + PriceTable), per call",
                 f"{r.costing_per_call_us:.2f} µs", "", ""),
                ("recost / bare costing", f"{r.costing_ratio:.1f}x", "", ""),
                ("bare SQL: read, keep the old cost, write a new one",
                 f"{r.rate(r.bare_sql_seconds):,.0f} steps/s", "", ""),
                ("recost / bare SQL", f"{r.bare_sql_ratio:.2f}x", "", ""),
            ]
        ),
        "",
        f"Method: the ingest workload's {r.events:,} records ingested once into a ledger "
        f"(cached; copied afresh for each run), an overrides file pricing each of its models at "
        f"rates the catalog does not use, so that every model call is re-priced. payoff: "
        f"`payoff --prices FILE recost --all --json` as a child process, wall time from start "
        f"to exit (start-up, the count for the progress bar, batches of "
        f"{recost.RECOST_BATCH:,} steps, each read, priced, its old costs kept and new ones "
        f"written in one transaction, `synchronous=FULL`), the steps re-priced checked; then "
        f"the same command again on the same copy, which re-prices nothing. Bare costing: the "
        f"costing benchmark's loop over the same calls in memory (a fresh Catalog). Bare SQL: "
        f"plain sqlite3 on a fresh copy, the same pages read by seq, each row's old cost "
        f"inserted into a history table and a new cost written into it, one transaction a page "
        f"(bench/recost.py). {len(r.recost_seconds)} repeat(s), medians. Seconds: recost "
        f"{_seconds(r.recost_seconds)}; again {_seconds(r.idle_seconds)}; bare costing "
        f"{_seconds(r.costing_seconds)}; bare SQL {_seconds(r.bare_sql_seconds)}.",
    ]  # fmt: skip


def sdk_section(r: sdk.SdkResult) -> list[str]:
    ratio = r.remote_median_us / r.bare_median_us
    return [
        "## The SDK: `task.record()` overhead per call",
        "",
        *_table(
            [
                (
                    "remote sink (enqueue only), median",
                    f"{r.remote_median_us:.1f} µs",
                    f"≤ {sdk.TARGET_REMOTE_MEDIAN_US:.0f} µs",
                    _verdict(r.remote_median_us <= sdk.TARGET_REMOTE_MEDIAN_US),
                ),
                ("embedded sink (one SQLite commit per record), median",
                 f"{r.embedded_median_us:.0f} µs", "", ""),
                ("bare `usage_from_response` of the same response, median",
                 f"{r.bare_median_us:.1f} µs", "", ""),
                ("remote record / bare usage read", f"{ratio:.1f}x", "", ""),
            ]
        ),
        "",
        f"Method: one `task.record(response)` of an OpenAI chat completion body (a dict) at a "
        f"time, each call timed alone with `perf_counter_ns`; medians over "
        f"{len(r.remote_us):,} remote and {len(r.embedded_us):,} embedded calls. The remote "
        f"Meter points at a port where nothing listens, so its threads spool and retry while "
        f"the calls are timed and no call waits for the network; the embedded Meter commits "
        f"each record (`synchronous=FULL`) before returning (bench/sdk.py).",
    ]  # fmt: skip


def startup_section(r: startup.StartupResult) -> list[str]:
    cpu_help = statistics.median(r.help_cpu_seconds)
    cpu_tasks = statistics.median(r.tasks_cpu_seconds)
    return [
        "## Start time: `payoff --help` and `payoff tasks`, each in a fresh process",
        "",
        *_table(
            [
                ("payoff --help, median wall time", f"{r.help_median_s:.3f} s",
                 f"≤ {startup.TARGET_S} s", _verdict(r.help_median_s <= startup.TARGET_S)),
                (f"payoff tasks on a {startup.LEDGER_TASKS}-task ledger, median wall time",
                 f"{r.tasks_median_s:.3f} s", f"≤ {startup.TARGET_S} s",
                 _verdict(r.tasks_median_s <= startup.TARGET_S)),
                ("payoff --help, median CPU time (user + system)", f"{cpu_help:.3f} s", "", ""),
                ("payoff tasks, median CPU time (user + system)", f"{cpu_tasks:.3f} s", "", ""),
            ]
        ),
        "",
        f"Method: start time: payoff --help, payoff tasks on a {startup.LEDGER_TASKS}-task "
        f"ledger: median of {len(r.help_seconds)} runs in a fresh process each, target "
        f"≤ {startup.TARGET_S} s; wall time from start to exit of the installed `payoff` "
        f"script (output to /dev/null, so `tasks` renders its table at 160 columns), the "
        f"commands alternating in blocks of {startup.RUNS}. CPU time is the children's "
        f"user + system time of the same runs (bench/startup.py).",
    ]  # fmt: skip


def ingest_batch() -> int:
    from payoff.service import BATCH_RECORDS

    return BATCH_RECORDS


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 records, 1 repeat")
    parser.add_argument("--records", type=int, help="records per benchmark (default 1,000,000)")
    args = parser.parse_args()
    records = args.records or (100_000 if args.quick else 1_000_000)
    repeats = 1 if args.quick else 3
    started = dt.datetime.now(dt.UTC)

    log(f"workload: {records:,} usage records (cached under {workload.WORK})")
    usage_file = workload.path_for(records)
    # Ingest goes first: a child's peak RSS includes its parent's, so this process must stay
    # small until the payoff runs are done (costing loads every call into memory).
    log("ingest:")
    ingest_result = ingest.measure(usage_file, records, repeats, log)
    log("ingest, random ids:")
    random_file = workload.path_for(records, ids="random")
    random_result = ingest.measure(random_file, records, repeats, log)
    log(f"workload: {records:,} model calls")
    calls_file = workload.path_for(records, llm_only=True)
    log("costing:")
    costing_result = costing.measure(calls_file, repeats, SAMPLE_SIZE, log)
    log("rating:")
    rating_result = rating.measure(records, repeats, log)
    log("invoice runs as the month grows:")
    scale_result = invoice_scale.measure(invoice_scale.sizes(records), repeats, log)
    # Before the sections that hold every record in memory: a child's peak RSS includes it.
    log("invoice runs as the month grows, on PostgreSQL:")
    postgres_scale = invoice_scale.measure_postgres(scale_result.sizes, repeats, log)
    log("economics:")
    economics_result = economics.measure(records, repeats, log)
    log("recost:")
    recost_result = recost.measure(usage_file, records, repeats, log)
    log("server:")
    server_result = server.measure(usage_file, records, repeats, log)
    log("postgresql:")
    postgres_result = postgres.measure(usage_file, records, repeats, log)
    log("sdk:")
    sdk_result = sdk.measure(repeats, log)
    log("start time:")
    startup_result = startup.measure(repeats, log)

    lines = [
        "# Benchmark results",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `python -m bench.run"
        f"{' --quick' if args.quick else ''}` ({records:,} records, {repeats} repeat(s)).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine()),
        "",
        *ingest_section(ingest_result),
        "",
        *random_ingest_section(random_result),
        "",
        *costing_section(costing_result),
        "",
        *rating_section(rating_result),
        "",
        *invoice_scale_section(scale_result),
        "",
        *economics_section(economics_result),
        "",
        *recost_section(recost_result),
        "",
        *server_section(server_result, ingest_result.payoff_rate),
        "",
        *postgres.section(postgres_result),
        "",
        *invoice_scale_section(postgres_scale),
        "",
        *sdk_section(sdk_result),
        "",
        *startup_section(startup_result),
        "",
    ]
    output = QUICK_RESULTS if args.quick else RESULTS
    output.write_text("\n".join(lines))
    log(
        f"ingest: payoff {ingest_result.payoff_rate:,.0f} events/s, bare "
        f"{ingest_result.bare_rate:,.0f} events/s, ratio {ingest_result.ratio:.2f}, peak RSS "
        f"{max(ingest_result.peak_rss_bytes) / 1e6:.0f} MB"
    )
    log(f"costing: {costing_result.ratio:,.0f}x calc_price, {costing_result.mismatches} mismatches")
    log(
        f"ingest, random ids: ratio {random_result.ratio:.2f} "
        f"({random_result.payoff_rate:,.0f} vs {random_result.bare_rate:,.0f} events/s)"
    )
    log(f"rating: {rating_result.ratio:.2f}x a bare GROUP BY")
    log(
        f"invoice runs: {scale_result.ratio:.2f}x from {scale_result.sizes[0]:,} "
        f"to {scale_result.sizes[-1]:,} events; on PostgreSQL {postgres_scale.ratio:.2f}x"
    )
    log(f"economics: simulate {economics_result.ratio:.2f}x one invoice run")
    log(
        f"recost: {recost_result.rate(recost_result.recost_seconds):,.0f} steps/s re-priced, "
        f"{recost_result.bare_sql_ratio:.2f}x bare SQL"
    )
    log(
        f"server: {server_result.batch_rate:,.0f} events/s batched, p99 "
        f"{server_result.latency_percentile(0.99):.1f} ms, {server_result.otlp_rate:,.0f} spans/s"
    )
    log(
        f"sdk: task.record() median {sdk_result.remote_median_us:.1f} µs remote, "
        f"{sdk_result.embedded_median_us:.0f} µs embedded"
    )
    log(
        f"start time: --help {startup_result.help_median_s:.3f} s, tasks "
        f"{startup_result.tasks_median_s:.3f} s (median wall time)"
    )
    log(f"wrote {output}")


if __name__ == "__main__":
    main()
