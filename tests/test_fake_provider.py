"""The fake provider answers the official SDKs as the providers do, streams included.

The client tests trust tests/fake_provider.py to speak each API well enough that the SDKs
read the usage it sends; these tests hold it to that, SDK by SDK, in one process.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from fake_provider import (
    ANSWER,
    ANTHROPIC_USAGE,
    CHAT_USAGE,
    GEMINI_USAGE,
    PLAN,
    RESPONSES_USAGE,
    TOOL_ARGUMENTS,
    FakeProvider,
)

# A server on loopback, in a thread.
pytestmark = pytest.mark.slow

ORDER_ID = {"type": "object", "properties": {"order_id": {"type": "string"}}}
LOOKUP = {"name": "lookup_order", "description": "Look an order up", "parameters": ORDER_ID}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    server = FakeProvider().start()
    yield server
    server.shutdown()
    server.server_close()


def test_chat_completions_plain_streamed_and_with_a_tool(provider: FakeProvider) -> None:
    client = openai.OpenAI(base_url=f"{provider.url}/v1", api_key="k", max_retries=0)
    plan = client.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "plan"}],
        tools=[{"type": "function", "function": LOOKUP}],
    )
    assert plan.usage is not None and plan.usage.model_dump(exclude_none=True) == CHAT_USAGE[PLAN]
    (call,) = plan.choices[0].message.tool_calls or []
    assert call.function.name == "lookup_order"  # type: ignore[union-attr]

    chunks = list(client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "answer"}], stream=True,
        stream_options={"include_usage": True}))  # fmt: skip
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == CHAT_USAGE[ANSWER]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    without = list(client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "go"}], stream=True))  # fmt: skip
    assert all(chunk.usage is None for chunk in without)  # as OpenAI: usage only when asked


def test_responses(provider: FakeProvider) -> None:
    client = openai.OpenAI(base_url=f"{provider.url}/v1", api_key="k", max_retries=0)
    answer = client.responses.create(model="gpt-5-mini", input="answer")
    assert answer.usage is not None
    assert answer.usage.model_dump(exclude_none=True) == RESPONSES_USAGE[ANSWER]
    assert answer.output_text


def test_anthropic_messages_plain_and_streamed(provider: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=provider.url, api_key="k", max_retries=0)
    tool = {"name": "lookup_order", "input_schema": LOOKUP["parameters"]}
    plan = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "plan"}])  # fmt: skip
    assert plan.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE[PLAN]
    assert plan.content[-1].type == "tool_use" and plan.content[-1].input == TOOL_ARGUMENTS

    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "answer"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE[ANSWER]


def test_gemini_generate_content_plain_and_streamed(provider: FakeProvider) -> None:
    client = genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=provider.url, api_version="v1beta")
    )
    plan = client.models.generate_content(model="gemini-2.5-flash", contents="plan")
    assert plan.usage_metadata is not None
    assert plan.usage_metadata.thoughts_token_count == GEMINI_USAGE[PLAN]["thoughtsTokenCount"]
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash",
                                                        contents="answer"))  # fmt: skip
    last = chunks[-1].usage_metadata
    assert last is not None and last.total_token_count == GEMINI_USAGE[ANSWER]["totalTokenCount"]
    assert "".join(chunk.text or "" for chunk in chunks)
