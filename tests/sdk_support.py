"""Shared set-up for the SDK tests: real SDK response objects, built locally, and ledger reads.

The provider response builders are the one copy test_sources.py uses too.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import EllipsisType
from typing import Any

import anthropic.types as anthropic_types
from google.genai import types as genai_types
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.responses import (
    Response,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails


def chat_usage(
    prompt: int = 1497, cached: int = 1408, completion: int = 1037, reasoning: int = 256
) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached, audio_tokens=0),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def chat_completion(
    usage: CompletionUsage | EllipsisType | None = ..., model: str = "gpt-4o-mini", **tokens: int
) -> ChatCompletion:
    """A chat completion; its usage is `chat_usage(**tokens)` unless given (None: no usage)."""
    if isinstance(usage, EllipsisType):
        usage = chat_usage(**tokens)
    return ChatCompletion(
        id="chatcmpl-1",
        choices=[
            Choice(
                finish_reason="stop",
                index=0,
                message=ChatCompletionMessage(role="assistant", content="Done."),
            )
        ],
        created=1762164000,
        model=model,
        object="chat.completion",
        usage=usage,
    )


def responses_response(model: str = "gpt-5") -> Response:
    return Response(
        id="resp_1",
        created_at=1762164000,
        model=model,
        object="response",
        output=[
            ResponseOutputMessage(
                id="msg_1",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text="Done.", annotations=[])],
            )
        ],
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        usage=ResponseUsage(
            input_tokens=9299,
            input_tokens_details=InputTokensDetails(cached_tokens=8448, cache_write_tokens=0),
            output_tokens=577,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=512),
            total_tokens=9876,
        ),
    )


def anthropic_message(
    usage: anthropic_types.Usage | None = None, **counts: Any
) -> anthropic_types.Message:
    """A Messages API reply; its usage is `Usage(**counts)` unless given."""
    if usage is None:
        usage = anthropic_types.Usage(**counts)
    return anthropic_types.Message(
        id="msg_01",
        content=[anthropic_types.TextBlock(type="text", text="Done.")],
        model="claude-sonnet-4-5",
        role="assistant",
        stop_reason="end_turn",
        stop_sequence=None,
        type="message",
        usage=usage,
    )


def gemini_usage() -> genai_types.GenerateContentResponseUsageMetadata:
    return genai_types.GenerateContentResponseUsageMetadata(
        prompt_token_count=373,
        cached_content_token_count=204,
        candidates_token_count=89,
        thoughts_token_count=167,
        tool_use_prompt_token_count=40,
        total_token_count=669,
    )


def gemini_response(with_usage: bool = True) -> genai_types.GenerateContentResponse:
    return genai_types.GenerateContentResponse(
        model_version="gemini-2.5-flash", usage_metadata=gemini_usage() if with_usage else None
    )


def events(db: Path, task: str | None = None) -> list[dict[str, Any]]:
    """The ledger's usage rows, oldest first."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM events" + (" WHERE task = ?" if task else "")
        rows = conn.execute(query + " ORDER BY id", (task,) if task else ())
        return [dict(row) for row in rows]


def buckets(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        row["input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["output_tokens"],
        row["reasoning_tokens"],
    )
