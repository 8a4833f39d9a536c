"""LiteLLM's custom callback interface, driven by LiteLLM's own mock responses (no network)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# LiteLLM would otherwise fetch its model price map from the network when imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

import payoff  # noqa: E402
from payoff.sdk.litellm import PayoffCallback  # noqa: E402
from sdk_support import events  # noqa: E402

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    # LiteLLM runs success callbacks on its own threads, after the call returns.
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the callback did not run"
        time.sleep(0.02)


@pytest.fixture
def meter(tmp_path: Path) -> Iterator[payoff.Meter]:
    meter = payoff.Meter(tmp_path / "l.db")
    litellm.callbacks = [PayoffCallback(meter, customer="acme", task_type="chat")]
    yield meter
    # LiteLLM copies `callbacks` into lists of its own on first use: empty those too.
    litellm.logging_callback_manager._reset_all_callbacks()
    meter.close()


def test_calls_in_a_task_are_recorded_into_it_streamed_ones_too(
    meter: payoff.Meter, tmp_path: Path
) -> None:
    with meter.task(customer="acme", type="agent") as task:
        response = litellm.completion(
            model="gpt-4o-mini", messages=MESSAGES, mock_response="It ships today."
        )
        stream = litellm.completion(
            model="anthropic/claude-sonnet-4-5", messages=MESSAGES,
            mock_response="It ships today.", stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        wait_for(lambda: task.steps == 2)
    assert text == "It ships today."
    rows = sorted(events(tmp_path / "l.db", task.id), key=lambda r: r["provider"])
    assert [(r["provider"], r["model"]) for r in rows] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-mini"),
    ]
    usage = response.usage
    assert (rows[1]["input_tokens"], rows[1]["output_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert all(r["cost_nanousd"] for r in rows)


def test_a_call_outside_any_task_gets_a_task_of_its_own(
    meter: payoff.Meter, tmp_path: Path
) -> None:
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="Hi.")
    store = payoff.open_store(tmp_path / "l.db")
    wait_for(lambda: bool(payoff.list_tasks(store, "acme")))
    wait_for(lambda: payoff.list_tasks(store, "acme")[0].status == "completed")
    (task,) = payoff.list_tasks(store, "acme")
    assert (task.type, task.steps) == ("chat", 1)
