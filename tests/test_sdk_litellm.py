"""LiteLLM's custom callback interface, driven by LiteLLM's own mock responses (no network)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# LiteLLM would otherwise fetch its model price map from the network when imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

import payoff  # noqa: E402
from factories import NOV_3_US  # noqa: E402
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


class _FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible provider on loopback: it answers every chat completion with the
    dated snapshot of the model asked for, as OpenAI does (`gpt-5` -> `gpt-5-2025-08-07`)."""

    def do_POST(self) -> None:
        asked = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_793_700_000,
            "model": f"{asked['model']}-2025-08-07",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "It ships today."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
        }
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.mark.slow
def test_the_model_the_provider_answered_is_recorded_and_a_call_can_be_marked_visible(
    meter: payoff.Meter, tmp_path: Path, fake_openai: str
) -> None:
    with meter.task(customer="acme", type="agent") as task:
        for visible in (False, True):
            litellm.completion(
                model="openai/gpt-5",
                messages=MESSAGES,
                api_base=fake_openai,
                api_key="not-a-key",
                metadata={"payoff_visible": visible},
            )
        wait_for(lambda: task.steps == 2)
    rows = events(tmp_path / "l.db", task.id)
    # The snapshot billed, not the alias asked for: genai-prices prices the snapshot.
    assert {(r["provider"], r["model"]) for r in rows} == {("openai", "gpt-5-2025-08-07")}
    assert sorted(r["visible"] for r in rows) == [0, 1]
    table = payoff.Catalog().price_table("openai", "gpt-5-2025-08-07", False, NOV_3_US)
    assert table is not None
    counts = payoff.TokenCounts(1200, 1024, 0, 300, 256)
    assert all(r["cost_nanousd"] == table.cost_nanousd(counts)[0] for r in rows)
    assert task.tokens_visible == 300 - 256
