"""A fake model provider on loopback that the real SDKs talk to, with realistic usage.

It speaks enough of four APIs to answer the official SDKs and the frameworks built on them:

    POST /v1/chat/completions                    OpenAI Chat Completions (and its SSE stream)
    POST /v1/responses                           OpenAI Responses
    POST /v1/messages                            Anthropic Messages (and its SSE stream)
    POST /v1beta/models/{model}:generateContent  Gemini (and :streamGenerateContent, SSE)

Every agent in tests/clients/ makes the same two model calls, whatever the client:

- the **plan** call: the first one, answered with a tool call when the request declares
  tools, with cached input and reasoning (Anthropic: a cache write);
- the **answer** call: any request that carries a tool result, or whose last user message
  says "answer"; its text is what the end user reads.

The usage objects have exactly the shapes the providers send (compare
shared fixtures real_usage.jsonl); `EXPECTED` holds, written by hand, the buckets each one
stands for in payoff's inclusive scheme (input includes cache reads and writes, output
includes reasoning), which is what a client's spans must let the ledger record.

Run it alone with `python tests/fake_provider.py --port 8765` to point a client at it.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PLAN = "plan"
ANSWER = "answer"
TOOL_ARGUMENTS = {"order_id": "A-1234"}
ANSWER_TEXT = "Your order A-1234 left the warehouse today."
PLAN_TEXT = "I will look the order up first."

OPENAI_SNAPSHOT = "gpt-5-mini-2025-08-07"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
GEMINI_VERSION = "gemini-2.5-flash"


@dataclass(frozen=True)
class Buckets:
    """One model call in payoff's inclusive buckets, with who billed it for what model."""

    provider: str
    model: str
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int


# -- usage objects, as each provider sends them ------------------------------------------------

CHAT_USAGE = {
    PLAN: {
        "prompt_tokens": 1149, "completion_tokens": 353, "total_tokens": 1502,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
    ANSWER: {
        "prompt_tokens": 1536, "completion_tokens": 96, "total_tokens": 1632,
        "prompt_tokens_details": {"cached_tokens": 1152, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
}  # fmt: skip

RESPONSES_USAGE = {
    phase: {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {
            "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]
        },
        "total_tokens": usage["total_tokens"],
    }
    for phase, usage in CHAT_USAGE.items()
}

# Anthropic counts input outside cache reads and writes; thinking is inside output_tokens.
ANTHROPIC_USAGE = {
    PLAN: {
        "input_tokens": 14, "cache_creation_input_tokens": 1893, "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 1893, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 412, "service_tier": "standard",
    },
    ANSWER: {
        "input_tokens": 57, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1893,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 118, "service_tier": "standard",
    },
}  # fmt: skip

# Gemini counts thoughts outside candidatesTokenCount.
GEMINI_USAGE = {
    PLAN: {
        "promptTokenCount": 1300, "cachedContentTokenCount": 1024,
        "candidatesTokenCount": 180, "thoughtsTokenCount": 350, "totalTokenCount": 1830,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1300}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 180}],
    },
    ANSWER: {
        "promptTokenCount": 1540, "cachedContentTokenCount": 1024,
        "candidatesTokenCount": 90, "thoughtsTokenCount": 40, "totalTokenCount": 1670,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1540}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 90}],
    },
}  # fmt: skip

# What each usage object stands for, by hand: (input, cache read, cache write, output, reasoning).
EXPECTED = {
    "openai": {
        PLAN: Buckets("openai", OPENAI_SNAPSHOT, 1149, 1024, 0, 353, 192),
        ANSWER: Buckets("openai", OPENAI_SNAPSHOT, 1536, 1152, 0, 96, 64),
    },
    "anthropic": {
        PLAN: Buckets("anthropic", ANTHROPIC_MODEL, 1907, 0, 1893, 412, 0),
        ANSWER: Buckets("anthropic", ANTHROPIC_MODEL, 1950, 1893, 0, 118, 0),
    },
    "google": {
        PLAN: Buckets("google", GEMINI_VERSION, 1300, 1024, 0, 530, 350),
        ANSWER: Buckets("google", GEMINI_VERSION, 1540, 1024, 0, 130, 40),
    },
}


# -- which call a request is -------------------------------------------------------------------


def _texts(content: Any) -> str:
    """The text of a message content: a string, or a list of parts of any of the four APIs."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_texts(part.get("text") or part.get("content")) for part in content
                        if isinstance(part, dict))  # fmt: skip
    return ""


def phase_of(api: str, body: dict[str, Any]) -> str:
    """PLAN or ANSWER: a tool result, or "answer" in the last user message, means ANSWER."""
    if api == "chat":
        messages = body.get("messages", [])
        tool_result = any(m.get("role") == "tool" for m in messages)
        users = [m for m in messages if m.get("role") == "user"]
    elif api == "responses":
        items = body.get("input", [])
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items
        tool_result = any(i.get("type") == "function_call_output" for i in items)
        users = [i for i in items if i.get("role") == "user"]
    elif api == "messages":
        messages = body.get("messages", [])
        tool_result = any(
            isinstance(m.get("content"), list)
            and any(p.get("type") == "tool_result" for p in m["content"])
            for m in messages
        )
        users = [m for m in messages if m.get("role") == "user" and not tool_result]
    else:  # gemini
        contents = body.get("contents", [])
        tool_result = any("functionResponse" in p for c in contents for p in c.get("parts", []))
        users = [{"content": c.get("parts", [])} for c in contents if c.get("role") == "user"]
    said = _texts(users[-1].get("content")) if users else ""
    return ANSWER if tool_result or "answer" in said.lower() else PLAN


def tool_name(api: str, body: dict[str, Any]) -> str | None:
    """The first tool the request declares, which the plan call then calls."""
    tools = body.get("tools") or []
    if not tools:
        return None
    first = tools[0]
    if api == "chat":
        return str(first["function"]["name"])
    if api == "gemini":
        declarations = first.get("functionDeclarations") or first.get("function_declarations")
        return str(declarations[0]["name"]) if declarations else None
    return str(first["name"])


# -- response bodies -----------------------------------------------------------------------------


def chat_completion(body: dict[str, Any], phase: str, tool: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None,
                               "annotations": []}  # fmt: skip
    if phase == PLAN and tool:
        message["tool_calls"] = [{"id": "call_fake1", "type": "function", "function": {
            "name": tool, "arguments": json.dumps(TOOL_ARGUMENTS)}}]  # fmt: skip
        finish = "tool_calls"
    else:
        message["content"] = ANSWER_TEXT if phase == ANSWER else PLAN_TEXT
        finish = "stop"
    return {
        "id": f"chatcmpl-fake-{phase}", "object": "chat.completion", "created": int(time.time()),
        "model": OPENAI_SNAPSHOT, "service_tier": "default", "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
                     "logprobs": None}],
        "usage": CHAT_USAGE[phase],
    }  # fmt: skip


def chat_chunks(body: dict[str, Any], phase: str, tool: str | None) -> list[dict[str, Any]]:
    """A Chat Completions stream: usage only in a last chunk, and only when asked for."""
    whole = chat_completion(body, phase, tool)
    message, finish = whole["choices"][0]["message"], whole["choices"][0]["finish_reason"]
    base = {key: whole[key] for key in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"] or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": whole["usage"]})
    return chunks


def response(body: dict[str, Any], phase: str, tool: str | None) -> dict[str, Any]:
    output: list[dict[str, Any]] = [{"type": "reasoning", "id": f"rs_fake_{phase}", "summary": []}]
    if phase == PLAN and tool:
        output.append({"type": "function_call", "id": "fc_fake1", "call_id": "call_fake1",
                       "name": tool, "arguments": json.dumps(TOOL_ARGUMENTS),
                       "status": "completed"})  # fmt: skip
    else:
        text = ANSWER_TEXT if phase == ANSWER else PLAN_TEXT
        output.append({"type": "message", "id": f"msg_fake_{phase}", "status": "completed",
                       "role": "assistant", "content": [
                           {"type": "output_text", "text": text, "annotations": [],
                            "logprobs": []}]})  # fmt: skip
    return {
        "id": f"resp_fake_{phase}", "object": "response", "created_at": int(time.time()),
        "status": "completed", "error": None, "incomplete_details": None,
        "instructions": None, "max_output_tokens": None, "model": OPENAI_SNAPSHOT,
        "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None}, "service_tier": "default",
        "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
        "tool_choice": "auto", "tools": body.get("tools", []), "top_p": 1.0,
        "truncation": "disabled", "user": None, "metadata": {},
        "usage": RESPONSES_USAGE[phase],
    }  # fmt: skip


def message(body: dict[str, Any], phase: str, tool: str | None) -> dict[str, Any]:
    if phase == PLAN and tool:
        content = [{"type": "text", "text": PLAN_TEXT},
                   {"type": "tool_use", "id": "toolu_fake1", "name": tool,
                    "input": TOOL_ARGUMENTS}]  # fmt: skip
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": ANSWER_TEXT if phase == ANSWER else PLAN_TEXT}]
        stop = "end_turn"
    return {
        "id": f"msg_fake_{phase}", "type": "message", "role": "assistant",
        "model": ANTHROPIC_MODEL, "content": content, "stop_reason": stop,
        "stop_sequence": None, "usage": ANTHROPIC_USAGE[phase],
    }  # fmt: skip


def message_events(body: dict[str, Any], phase: str, tool: str | None) -> list[dict[str, Any]]:
    """An Anthropic stream: input usage in message_start, final output in message_delta."""
    whole = message(body, phase, tool)
    usage = whole["usage"]
    start = {**whole, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}  # fmt: skip
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(whole["content"]):
        if block["type"] == "text":
            events += [
                {"type": "content_block_start", "index": index,
                 "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": "text_delta", "text": block["text"]}},
            ]  # fmt: skip
        else:
            events += [
                {"type": "content_block_start", "index": index,
                 "content_block": {**block, "input": {}}},
                {"type": "content_block_delta", "index": index,
                 "delta": {"type": "input_json_delta",
                           "partial_json": json.dumps(block["input"])}},
            ]  # fmt: skip
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {"type": "message_delta", "delta": {"stop_reason": whole["stop_reason"],
                                            "stop_sequence": None},
         "usage": {"output_tokens": usage["output_tokens"]}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return events


def generate_content(body: dict[str, Any], phase: str, tool: str | None) -> dict[str, Any]:
    if phase == PLAN and tool:
        parts: list[dict[str, Any]] = [{"functionCall": {"name": tool, "args": TOOL_ARGUMENTS}}]
    else:
        parts = [{"text": ANSWER_TEXT if phase == ANSWER else PLAN_TEXT}]
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": GEMINI_USAGE[phase],
        "modelVersion": GEMINI_VERSION, "responseId": f"fake-{phase}",
    }  # fmt: skip


# -- the server --------------------------------------------------------------------------------

_GEMINI = re.compile(r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>\w+)")


@dataclass
class Call:
    """One request the provider answered: for the findings and the tests' own checks."""

    path: str
    model: str
    phase: str
    stream: bool


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeProvider

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a test prints what it needs

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?", 1)[0]
        gemini = _GEMINI.fullmatch(path)
        if path.endswith("/chat/completions"):
            self._answer("chat", body, chat_completion, chat_chunks, bool(body.get("stream")))
        elif path.endswith("/responses"):
            self._answer("responses", body, response, None, False)
        elif path.endswith("/messages"):
            self._answer("messages", body, message, message_events, bool(body.get("stream")))
        elif gemini:
            body.setdefault("model", gemini["model"])
            stream = gemini["method"] == "streamGenerateContent"
            self._answer("gemini", body, generate_content, _gemini_chunks, stream)
        else:
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "fake"}})

    def _answer(
        self, api: str, body: dict[str, Any], whole: Any, events: Any, stream: bool
    ) -> None:
        phase, tool = phase_of(api, body), tool_name(api, body)
        self.server.calls.append(Call(self.path, str(body.get("model", "")), phase, stream))
        if not stream:
            self._send_json(200, whole(body, phase, tool))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events(body, phase, tool):
            name = f"event: {event['type']}\n" if api == "messages" else ""
            self.wfile.write(f"{name}data: {json.dumps(event)}\n\n".encode())
        if api == "chat":
            self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _send_json(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _gemini_chunks(body: dict[str, Any], phase: str, tool: str | None) -> list[dict[str, Any]]:
    """A Gemini stream: the text in two chunks, usage (cumulative) on each, final on the last."""
    whole = generate_content(body, phase, tool)
    first = {**whole, "candidates": [{**whole["candidates"][0], "finishReason": None}]}
    return [first, whole]


class FakeProvider(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.calls: list[Call] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeProvider:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    print(f"fake provider on http://127.0.0.1:{port}", flush=True)
    FakeProvider(port).serve_forever()
