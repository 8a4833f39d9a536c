"""The SDK on the embedded sink: real SDK responses in, records v1 in a real SQLite ledger."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import anthropic.types as anthropic_types
import genai_prices
import pytest
from google.genai import types as genai_types

import payoff
from payoff.core.periods import from_us
from payoff.sdk.ids import uuid7
from sdk_support import (
    anthropic_message,
    buckets,
    chat_completion,
    events,
    gemini_response,
    responses_response,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def meter(db: Path) -> payoff.Meter:
    meter = payoff.Meter(db)
    yield meter
    meter.close()


def task_row(db: Path, task_id: str) -> tuple[str, str, str | None]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT customer, status, type FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()


def test_each_sdks_response_is_recorded_with_its_normalised_buckets(
    meter: payoff.Meter, db: Path
) -> None:
    with meter.task(customer="acme", type="support.ticket") as task:
        assert task.record(chat_completion()) is not None
        task.record(responses_response())
        task.record(
            anthropic_message(
                input_tokens=3,
                cache_read_input_tokens=1111,
                cache_creation_input_tokens=50,
                output_tokens=406,
            )
        )
        task.record(gemini_response(), visible=True)
    rows = events(db, task.id)
    assert [(r["provider"], r["model"]) for r in rows] == [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-5"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-flash"),
    ]
    assert [buckets(r) for r in rows] == [
        (1497, 1408, 0, 1037, 256),  # OpenAI: cached and reasoning inside the totals
        (9299, 8448, 0, 577, 512),
        (1164, 1111, 50, 406, 0),  # Anthropic: input excludes the cache, so it is added
        (413, 204, 0, 256, 167),  # Gemini: thoughts outside candidates, tool prompt outside
    ]
    assert [r["visible"] for r in rows] == [0, 0, 0, 1]
    assert all(r["cost_nanousd"] is not None for r in rows)
    # The task's running totals are what the ledger says.
    summary = payoff.list_tasks(payoff.open_store(db), "acme")[0]
    assert summary.status == "completed" and summary.type == "support.ticket"
    assert (task.tokens_visible, task.tokens_hidden) == (89, summary.tokens_hidden)
    assert task.tokens_visible == summary.tokens_visible
    assert task.cost_nanousd == summary.cost_nanousd


def test_details_of_each_sdks_response_are_recorded_as_version_2_and_costed(
    meter: payoff.Meter, db: Path
) -> None:
    # google-genai's own types: audio and video in the prompt (some of it cached), and an
    # image out; Anthropic's: a web search and one-hour cache writes. The SDK's enums and
    # nested models are read as the REST bodies are.
    gemini = genai_types.GenerateContentResponse(
        model_version="gemini-2.5-flash",
        usage_metadata=genai_types.GenerateContentResponseUsageMetadata(
            prompt_token_count=17713,
            cached_content_token_count=17379,
            candidates_token_count=68,
            thoughts_token_count=821,
            prompt_tokens_details=[
                genai_types.ModalityTokenCount(modality="TEXT", token_count=16),
                genai_types.ModalityTokenCount(modality="VIDEO", token_count=15780),
                genai_types.ModalityTokenCount(modality="AUDIO", token_count=1917),
            ],
            cache_tokens_details=[
                genai_types.ModalityTokenCount(modality="AUDIO", token_count=1881),
                genai_types.ModalityTokenCount(modality="VIDEO", token_count=15483),
            ],
        ),
    )
    claude = anthropic_message(
        usage=anthropic_types.Usage(
            input_tokens=8984,
            output_tokens=520,
            cache_creation_input_tokens=3000,
            cache_read_input_tokens=0,
            cache_creation=anthropic_types.CacheCreation(
                ephemeral_1h_input_tokens=2000, ephemeral_5m_input_tokens=1000
            ),
            server_tool_use=anthropic_types.ServerToolUsage(
                web_search_requests=2, web_fetch_requests=0
            ),
        )
    )
    with meter.task(customer="acme") as task:
        task.record(gemini)
        task.record(claude)
        task.record(chat_completion())  # text only: a version-1 record
    rows = events(db, task.id)
    details = [json.loads(r["usage_details"]) if r["usage_details"] else None for r in rows]
    assert details == [
        {
            "cache_audio_read_tokens": 1881,
            "cache_video_read_tokens": 15483,
            "input_audio_tokens": 1917,
            "input_video_tokens": 15780,
        },
        {"cache_write_1h_tokens": 2000, "web_search_requests": 2},
        None,
    ]
    # What genai-prices charges for each whole response, read by its own extractor.
    for row, response in zip(rows[:2], (gemini, claude), strict=True):
        body = response.model_dump(mode="json", by_alias=True, exclude_none=True)
        expected = genai_prices.extract_usage(body, provider_id=row["provider"]).calc_price(
            genai_request_timestamp=from_us(row["occurred_at_us"])
        )
        assert row["cost_nanousd"] == payoff.round_usd_to_nanousd(expected.total_price)
    assert task.cost_nanousd == sum(r["cost_nanousd"] for r in rows)


def test_dicts_work_too_and_a_tool_and_an_outcome_land(meter: payoff.Meter, db: Path) -> None:
    with meter.task(customer="acme", type="support.ticket") as task:
        task.record(
            {"object": "chat.completion", "model": "gpt-4o",
             "usage": {"prompt_tokens": 1000, "completion_tokens": 200}},
            visible=True,
        )  # fmt: skip
        task.tool("web_search", cost="0.004")
        outcome = task.outcome("ticket.resolved", value="120.00")
    rows = events(db, task.id)
    assert rows[1]["kind"] == "tool" and rows[1]["cost_nanousd"] == 4_000_000
    assert '"gen_ai.tool.name":"web_search"' in rows[1]["attributes"]
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT task, value FROM outcomes WHERE id = ?", (outcome,)
        ).fetchone() == (
            task.id,
            "120.00",
        )
    assert task.cost_nanousd == rows[0]["cost_nanousd"] + 4_000_000


def test_status_is_failed_on_an_exception_which_propagates_untouched(
    meter: payoff.Meter, db: Path
) -> None:
    class Boom(Exception):
        pass

    error = Boom("agent failed")
    with pytest.raises(Boom) as raised, meter.task(customer="acme", type="t") as task:
        task.record(chat_completion())
        raise error
    assert raised.value is error
    assert task_row(db, task.id) == ("acme", "failed", "t")
    with meter.task(customer="acme") as empty:
        pass
    assert task_row(db, empty.id) == ("acme", "completed", None)  # exists without any step


def test_a_bad_record_is_refused_at_the_call_site_and_nothing_is_stored(
    meter: payoff.Meter, db: Path
) -> None:
    with meter.task(customer="acme") as task:
        with pytest.raises(payoff.RecordError, match="usage"):
            task.record({"model": "gpt-4o", "usage": None})
        with pytest.raises(payoff.RecordError, match="model"):
            task.record({"usage": {"prompt_tokens": 1, "completion_tokens": 1}})
        with pytest.raises(payoff.RecordError) as raised:
            task.tool("x", attributes={"n": 1})  # type: ignore[dict-item]
        assert raised.value.field == "attributes[...]"
        with pytest.raises(TypeError, match="float"):
            task.tool("x", cost=0.004)  # type: ignore[arg-type]
        with pytest.raises(payoff.RecordError, match="bytes"):
            task.tool("x", attributes={"big": "x" * 2**20})
        with pytest.raises(ValueError, match="9 decimal places"):
            task.tool("x", cost="0.0000000001")
    assert events(db, task.id) == []
    assert task.steps == 0


def test_ids_are_time_ordered_unique_uuid7() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert all(shape.fullmatch(i) for i in ids[:100])


def test_record_ids_are_made_at_the_call_site_so_a_resend_is_a_duplicate(
    meter: payoff.Meter, db: Path
) -> None:
    sent: list[bytes] = []
    submit = meter.sink.submit
    meter.sink.submit = lambda line: (sent.append(line), submit(line))[1]  # type: ignore[method-assign]
    with meter.task(customer="acme") as task:
        task.record(chat_completion())
    store = payoff.open_store(db)
    report = payoff.ingest_lines(store, list(enumerate(sent, 1)), workers=0)
    assert report.duplicates == len(sent) and report.accepted == 0


# -- budgets, at the exact boundary ---------------------------------------------------------


# chat_completion(prompt=P, cached=0, completion=C, reasoning=0) hides P + C tokens (not visible).
def hidden_step(tokens: int) -> object:
    return chat_completion(prompt=tokens - 1, cached=0, completion=1, reasoning=0)


def test_hidden_tokens_at_the_limit_are_within_budget_one_more_is_over(
    meter: payoff.Meter, db: Path
) -> None:
    budget = payoff.Budget(hidden_tokens=1_000, enforce=True)
    with meter.task(customer="acme", budget=budget) as task:
        task.record(hidden_step(600))
        task.record(hidden_step(400))  # exactly the limit
        assert task.remaining().hidden_tokens == 0 and task.remaining().exceeded == ()
        task.check()
        task.record(hidden_step(1))  # crosses: still recorded, no error
        assert task.remaining().hidden_tokens == -1
        assert task.remaining().exceeded == ("hidden_tokens",)
        with pytest.raises(payoff.BudgetExceeded) as raised:
            task.tool("web_search", cost="0.001")  # the next call raises, after recording
        with pytest.raises(payoff.BudgetExceeded):
            task.check()
    assert (raised.value.budget, raised.value.limit, raised.value.spent) == (
        "hidden_tokens",
        1000,
        1001,
    )
    rows = events(db, task.id)
    assert len(rows) == 4  # every step that was spent is in the ledger
    assert '"payoff.budget_exceeded":"hidden_tokens"' in rows[2]["attributes"]
    assert task_row(db, task.id)[1] == "completed"  # the errors were caught inside the block


def test_visible_output_does_not_count_against_a_hidden_budget(meter: payoff.Meter) -> None:
    with meter.task(customer="acme", budget=payoff.Budget(hidden_tokens=100)) as task:
        task.record(
            chat_completion(prompt=100, cached=0, completion=500, reasoning=0), visible=True
        )
    assert (task.tokens_hidden, task.tokens_visible, task.flags) == (100, 500, [])


def test_a_cost_budget_at_the_exact_nano_usd_and_one_above(meter: payoff.Meter) -> None:
    with meter.task(customer="acme", budget=payoff.Budget(cost="0.010", enforce=True)) as task:
        task.tool("a", cost="0.004")
        task.tool("b", cost="0.006")  # exactly 0.010
        assert task.remaining().cost == "0.000000000"
        task.tool("c", cost="0.000000001")  # one nano-USD over: recorded, flagged
        assert task.remaining().cost == "-0.000000001"
        with pytest.raises(payoff.BudgetExceeded, match="cost budget"):
            task.tool("d", cost="0")


def test_an_unenforced_budget_only_flags_the_task(meter: payoff.Meter) -> None:
    with meter.task(customer="acme", budget=payoff.Budget(hidden_tokens=10)) as task:
        task.record(hidden_step(11))
        task.record(hidden_step(11))  # no error
    assert task.flags == ["hidden_tokens"] and task.steps == 2


def test_a_customer_budget_counts_what_the_ledger_holds_this_month(db: Path) -> None:
    first = payoff.Meter(db)
    with first.task(customer="acme") as task:
        task.tool("a", cost="0.5")
    first.close()
    meter = payoff.Meter(db)  # a new process: the ledger's spend counts
    meter.customer_budget("acme", cost_per_period="1.00", enforce=True)
    with meter.task(customer="acme") as task:
        assert task.remaining().customer_cost == "0.500000000"
        task.tool("b", cost="0.5")  # exactly the limit
        task.check()
    with meter.task(customer="globex") as other:
        other.tool("b", cost="5")  # another customer: no budget
    with pytest.raises(payoff.BudgetExceeded, match="customer_cost"), meter.task("acme") as task:
        task.tool("c", cost="0.000000001")  # crosses
        assert task.remaining().exceeded == ("customer_cost",)
        task.tool("d", cost="0")  # raises
    meter.close()


def test_remote_and_embedded_compute_the_same_remaining(tmp_path: Path) -> None:
    # The remote sink is never reached here: budgets are computed locally, before sending.
    remote = payoff.Meter(
        "http://127.0.0.1:9", api_key="k", spool=tmp_path / "spool", close_at_exit=False
    )
    embedded = payoff.Meter(tmp_path / "l.db")
    figures = []
    for meter in (remote, embedded):
        with meter.task(
            customer="acme", budget=payoff.Budget(hidden_tokens=5000, cost="1")
        ) as task:
            task.record(chat_completion())
            task.tool("web_search", cost="0.004")
        figures.append(task.remaining())
    assert figures[0] == figures[1]
    assert remote.close(timeout_s=0.2) is False  # nothing listens there: the spool keeps them
    embedded.close()


def test_the_example_agent_runs_end_to_end(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[1] / "examples" / "sdk_agent.py"
    ledger = tmp_path / "agent.db"
    run = subprocess.run(
        [sys.executable, str(example), str(ledger)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "visible tokens: 120\n" in run.stdout and "hidden tokens:  8,100\n" in run.stdout
    (summary,) = payoff.list_tasks(payoff.open_store(ledger), "acme")
    assert f"cost:           {payoff.format_nanousd(summary.cost_nanousd)} USD" in run.stdout
    assert summary.steps == 3 and summary.status == "completed"


def test_the_agents_exception_survives_a_meter_closed_inside_the_task(db: Path) -> None:
    class Boom(Exception):
        pass

    meter = payoff.Meter(db)
    error = Boom("agent failed")
    with pytest.raises(Boom) as raised, meter.task(customer="acme", type="t"):
        meter.close()  # reporting the failed status is now impossible
        raise error
    assert raised.value is error
