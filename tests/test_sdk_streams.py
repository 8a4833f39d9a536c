"""Streamed responses: real chunk and event objects of each SDK, built locally, no network."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic.types as anthropic_types
import httpx
import openai
import pytest
from google.genai import types as genai_types
from openai.types import CompletionUsage
from openai.types.chat.chat_completion_chunk import ChatCompletionChunk, Choice, ChoiceDelta
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.responses import ResponseCompletedEvent, ResponseCreatedEvent

import payoff
from payoff.sdk.task import UNKNOWN_USAGE_UNIT
from sdk_support import anthropic_message, buckets, events, responses_response


def openai_chat_chunks(include_usage: bool) -> list[ChatCompletionChunk]:
    def chunk(text: str | None, usage: CompletionUsage | None = None) -> ChatCompletionChunk:
        choices = [] if text is None else [Choice(delta=ChoiceDelta(content=text), index=0)]
        return ChatCompletionChunk(
            id="c1", choices=choices, created=1, model="gpt-4o-mini",
            object="chat.completion.chunk", usage=usage,
        )  # fmt: skip

    chunks = [chunk("Hel"), chunk("lo")]
    if include_usage:  # stream_options={"include_usage": True}: a last chunk, no choices
        usage = CompletionUsage(
            prompt_tokens=1200, completion_tokens=300, total_tokens=1500,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1000),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=200),
        )  # fmt: skip
        chunks.append(chunk(None, usage))
    return chunks


def responses_events() -> list[Any]:
    created = responses_response().model_copy(update={"usage": None, "status": "in_progress"})
    return [
        ResponseCreatedEvent(type="response.created", response=created, sequence_number=0),
        ResponseCompletedEvent(
            type="response.completed", response=responses_response(), sequence_number=1
        ),
    ]


def anthropic_events() -> list[Any]:
    start = anthropic_message(
        input_tokens=3, cache_read_input_tokens=1111, cache_creation_input_tokens=50,
        output_tokens=1,
    )  # fmt: skip
    return [
        anthropic_types.RawMessageStartEvent(type="message_start", message=start),
        anthropic_types.RawContentBlockStartEvent(
            type="content_block_start",
            index=0,
            content_block=anthropic_types.TextBlock(type="text", text=""),
        ),
        anthropic_types.RawContentBlockDeltaEvent(
            type="content_block_delta",
            index=0,
            delta=anthropic_types.TextDelta(type="text_delta", text="Done."),
        ),
        anthropic_types.RawContentBlockStopEvent(type="content_block_stop", index=0),
        anthropic_types.RawMessageDeltaEvent(
            type="message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage=anthropic_types.MessageDeltaUsage(output_tokens=406),
        ),
        anthropic_types.RawMessageStopEvent(type="message_stop"),
    ]


def gemini_chunks() -> list[genai_types.GenerateContentResponse]:
    def chunk(text: str, usage: dict[str, int]) -> genai_types.GenerateContentResponse:
        return genai_types.GenerateContentResponse(
            model_version="gemini-2.5-flash",
            candidates=[
                genai_types.Candidate(
                    content=genai_types.Content(role="model", parts=[genai_types.Part(text=text)])
                )
            ],
            usage_metadata=genai_types.GenerateContentResponseUsageMetadata(**usage),
        )

    return [
        chunk("Hel", {"prompt_token_count": 373, "cached_content_token_count": 204}),
        chunk(
            "lo",
            {
                "prompt_token_count": 373,
                "cached_content_token_count": 204,
                "candidates_token_count": 89,
                "thoughts_token_count": 167,
                "tool_use_prompt_token_count": 40,
                "total_token_count": 669,
            },
        ),
    ]


@pytest.fixture
def meter(tmp_path: Path) -> Iterator[payoff.Meter]:
    meter = payoff.Meter(tmp_path / "l.db")
    yield meter
    meter.close()


@pytest.mark.parametrize(
    ("chunks", "expected", "model"),
    [
        (openai_chat_chunks(True), (1200, 1000, 0, 300, 200), "gpt-4o-mini"),
        (responses_events(), (9299, 8448, 0, 577, 512), "gpt-5"),
        (anthropic_events(), (1164, 1111, 50, 406, 0), "claude-sonnet-4-5"),
        (gemini_chunks(), (413, 204, 0, 256, 167), "gemini-2.5-flash"),
    ],
    ids=["openai-chat", "openai-responses", "anthropic", "gemini"],
)
def test_a_stream_passes_chunks_through_and_records_its_usage_at_the_end(
    meter: payoff.Meter, tmp_path: Path, chunks: list[Any], expected: tuple[int, ...], model: str
) -> None:
    with meter.task(customer="acme") as task:
        wrapped = task.record(iter(chunks), visible=True)
        seen = []
        for chunk in wrapped:
            seen.append(chunk)
            assert task.steps == 0  # nothing is recorded before the stream ends
    assert all(a is b for a, b in zip(seen, chunks, strict=True))  # untouched, same objects
    (row,) = events(tmp_path / "l.db", task.id)
    assert (buckets(row), row["model"], row["visible"]) == (expected, model, 1)


def test_a_generator_stream_as_google_genai_returns_it(meter: payoff.Meter, tmp_path: Path) -> None:
    def generate() -> Iterator[genai_types.GenerateContentResponse]:
        yield from gemini_chunks()

    with meter.task(customer="acme") as task:
        text = "".join(chunk.text or "" for chunk in task.record(generate()))
    assert text == "Hello" and task.steps == 1


def test_a_stream_without_usage_is_recorded_as_a_step_of_unknown_cost(
    meter: payoff.Meter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), meter.task(customer="acme") as task:
        list(task.record(iter(openai_chat_chunks(include_usage=False))))
    (row,) = events(tmp_path / "l.db", task.id)
    assert (row["kind"], row["unit"], row["model"]) == ("custom", UNKNOWN_USAGE_UNIT, "gpt-4o-mini")
    assert row["cost_nanousd"] is None  # unknown, not zero: the ledger counts it as unpriced
    assert task.unpriced_steps == 1
    assert "include_usage" in caplog.text
    summary = payoff.list_tasks(payoff.open_store(tmp_path / "l.db"), "acme")[0]
    assert summary.unpriced_steps == 1


def test_a_stream_that_fails_midway_is_recorded_and_the_error_propagates(
    meter: payoff.Meter,
) -> None:
    def broken() -> Iterator[Any]:
        yield from anthropic_events()[:2]
        raise ConnectionError("dropped")

    with meter.task(customer="acme") as task, pytest.raises(ConnectionError):
        for _ in task.record(broken()):
            pass
    assert task.steps == 1 and task.tokens_total == 1164 + 1  # what message_start said


def test_a_stream_closed_early_records_once(meter: payoff.Meter) -> None:
    with meter.task(customer="acme") as task:
        stream = task.record(iter(gemini_chunks()))
        next(stream)
        stream.close()
        stream.close()
    assert task.steps == 1


def test_async_streams_are_recorded_too(meter: payoff.Meter, tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[ChatCompletionChunk]:
        for chunk in openai_chat_chunks(True):
            yield chunk

    async def run() -> str:
        with meter.task(customer="acme") as task:
            async for _ in task.record(chunks()):
                pass
        return task.id

    task_id = asyncio.run(run())
    (row,) = events(tmp_path / "l.db", task_id)
    assert buckets(row) == (1200, 1000, 0, 300, 200)


def test_an_enforced_budget_over_before_a_stream_raises_when_it_ends(meter: payoff.Meter) -> None:
    budget = payoff.Budget(hidden_tokens=1, enforce=True)
    with meter.task(customer="acme", budget=budget) as task:
        list(task.record(iter(gemini_chunks())))  # crosses
        with pytest.raises(payoff.BudgetExceeded):
            list(task.record(iter(gemini_chunks())))
    assert task.steps == 2


def openai_client_streaming(chunks: list[ChatCompletionChunk]) -> openai.OpenAI:
    """A real openai client whose transport answers with these chunks as server-sent events."""
    body = "".join(f"data: {chunk.model_dump_json()}\n\n" for chunk in chunks) + "data: [DONE]\n\n"

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=body.encode())

    transport = httpx.MockTransport(answer)
    return openai.OpenAI(api_key="x", http_client=httpx.Client(transport=transport))


def test_a_stream_abandoned_with_break_is_recorded_once_when_collected(
    meter: payoff.Meter,
) -> None:
    client = openai_client_streaming(openai_chat_chunks(include_usage=True))
    with meter.task(customer="acme") as task:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        for _ in task.record(stream):
            break  # never closed, never read to its end
        del stream
        gc.collect()
        assert task.steps == 1  # recorded, with what it saw: no usage yet, so unknown
        gc.collect()
    assert task.steps == 1
    rows = events(meter.sink.store.path, task.id)  # type: ignore[attr-defined]
    assert [(row["kind"], row["unit"]) for row in rows] == [("custom", UNKNOWN_USAGE_UNIT)]


def test_the_openai_stream_helper_usage_is_read_from_its_chunk_events(
    meter: payoff.Meter,
) -> None:
    client = openai_client_streaming(openai_chat_chunks(include_usage=True))
    with meter.task(customer="acme") as task, client.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    ) as stream:  # fmt: skip
        for _ in task.record(stream):
            pass
    assert task.steps == 1 and task.tokens_total == 1500
