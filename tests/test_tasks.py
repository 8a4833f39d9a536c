"""Visible and hidden tokens and cost of a task, computed in SQL."""

from __future__ import annotations

from collections.abc import Callable

from factories import usage
from payoff.service import IngestReport
from payoff.service.tasks import task_json
from payoff.store.protocol import Store


def test_hidden_and_visible_arithmetic(ingest: Callable[..., IngestReport], store: Store) -> None:
    ingest(
        # plan: hidden; 1,200 in (1,000 cached) + 300 out (200 reasoning) = 1,500 tokens
        usage("e1", task="t1", cache_read_tokens=1000, reasoning_tokens=200),
        # a tool call with an explicit cost and no tokens
        {
            "id": "e2",
            "time": "2026-11-03T10:00:01Z",
            "customer": "acme",
            "task": "t1",
            "kind": "tool",
            "cost": "0.004",
        },
        # answer: visible; 2,000 in + 500 out of which 100 reasoning: 400 visible tokens
        usage(
            "e3",
            task="t1",
            input_tokens=2000,
            output_tokens=500,
            reasoning_tokens=100,
            visible=True,
        ),
        # a model the catalog does not know: counted, unpriced
        usage(
            "e4",
            task="t1",
            provider="self-hosted",
            model="mystery-70b",
            input_tokens=100,
            output_tokens=10,
        ),
    )
    (summary,) = store.tasks()
    assert summary.steps == 4
    assert summary.tokens_total == 1500 + 2500 + 110
    assert summary.tokens_visible == 400
    assert summary.tokens_hidden == 1500 + 2100 + 110
    assert summary.unpriced_steps == 1
    # gpt-4o: 2.5 in, 1.25 cached, 10 out per MTok
    plan = 200 * 2500 + 1000 * 1250 + 300 * 10_000
    answer = 2000 * 2500 + 500 * 10_000
    assert summary.cost_nanousd == plan + 4_000_000 + answer
    assert summary.cost_visible_nanousd == 400 * 10_000
    assert task_json(summary) == {
        "id": "t1",
        "customer": "acme",
        "type": None,
        "status": "open",
        "steps": 4,
        "tokens_total": 4110,
        "tokens_visible": 400,
        "tokens_hidden": 3710,
        "hidden_ratio": "9.28",
        "cost_usd": "0.018750000",
        "cost_visible_usd": "0.004000000",
        "cost_hidden_usd": "0.014750000",
        "unpriced_steps": 1,
    }


def test_a_task_with_no_visible_step_has_no_ratio(
    ingest: Callable[..., IngestReport], store: Store
) -> None:
    ingest(usage("e1", task="t1"))
    assert task_json(store.tasks()[0])["hidden_ratio"] is None


def test_tasks_filter_by_customer_and_page(
    ingest: Callable[..., IngestReport], store: Store
) -> None:
    ingest(
        *(usage(f"e{i}", task=f"t{i}", customer="acme" if i % 2 else "globex") for i in range(10))
    )
    assert {t.customer for t in store.tasks("globex")} == {"globex"}
    assert len(store.tasks("globex")) == 5
    assert [t.id for t in store.tasks(limit=3, offset=2)] == ["t5", "t7", "t9"]


def test_steps_at_the_same_moment_are_listed_by_id_whatever_their_arrival(
    ingest: Callable[..., IngestReport], store: Store
) -> None:
    """The same order on every backend, however the records were batched."""
    ingest(usage("s2", task="t1"))
    ingest(usage("s3", task="t1"), usage("s1", task="t1"))
    assert [step["id"] for step in store.task_steps("t1", limit=10)] == ["s1", "s2", "s3"]
