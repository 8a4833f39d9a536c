"""Token buckets and the normalisation of provider usage objects.

payoff uses one scheme, the inclusive one of OpenTelemetry GenAI and genai-prices:
`input` is the total input and includes `cache_read` and `cache_write`; `output` is the total
output and includes `reasoning`. Providers differ, and getting this wrong double-bills
cached tokens:

- `openai.chat`: prompt_tokens includes the cached tokens; completion_tokens includes
  reasoning.
- `openai.responses`: input_tokens includes the cached tokens; output_tokens includes
  reasoning.
- `anthropic`: input_tokens EXCLUDES cache reads and cache writes (cache_read_input_tokens,
  cache_creation_input_tokens), which are added to reach the total; output_tokens includes
  thinking.
- `gemini`: promptTokenCount includes cached content but EXCLUDES toolUsePromptTokenCount,
  which is added; thoughtsTokenCount is OUTSIDE candidatesTokenCount and is added to output.

Gemini objects are accepted in the REST API's camelCase and in the Python SDK's snake_case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from payoff.core.errors import RecordError

MAX_TOKENS = 10**10
"""Tokens of one call in any bucket, at most: far above any context window, far below what a
64-bit ledger column holds (a count above it is refused, whichever way it arrives)."""


class TokenCounts(NamedTuple):
    """The inclusive buckets of one model call."""

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    def check(self) -> TokenCounts:
        """Raise RecordError unless every count is an int from 0 to MAX_TOKENS and parts fit
        their totals."""
        for name, value in zip(self._fields, self, strict=True):
            if type(value) is not int or value < 0:
                raise RecordError(f"must be a non-negative integer, got {value!r}", field=name)
            if value > MAX_TOKENS:
                raise RecordError(
                    f"{name} tokens add up to {value:,}, more than {MAX_TOKENS:,} in one call",
                    field=name,
                )
        if self.cache_read + self.cache_write > self.input:
            raise RecordError(
                f"cache_read_tokens ({self.cache_read}) + cache_write_tokens ({self.cache_write}) "
                f"exceed input_tokens ({self.input})",
                field="input_tokens",
            )
        if self.reasoning > self.output:
            raise RecordError(
                f"reasoning_tokens ({self.reasoning}) exceed output_tokens ({self.output})",
                field="reasoning_tokens",
            )
        return self

    @property
    def total(self) -> int:
        return self.input + self.output


UsageObject = Mapping[str, Any]


def _count(usage: UsageObject, *path: str) -> int:
    """The integer at `path`, 0 when absent or null; RecordError when it is not a count."""
    value: Any = usage
    for key in path:
        if not isinstance(value, Mapping):
            return 0
        value = value.get(key)
        if value is None:
            return 0
    if type(value) is not int or value < 0:
        raise RecordError(
            f"must be a non-negative integer, got {value!r}", field="usage." + ".".join(path)
        )
    if value > MAX_TOKENS:
        raise RecordError(
            f"must be at most {MAX_TOKENS:,} tokens, got {value:,}", field="usage." + ".".join(path)
        )
    return value


def _first_count(usage: UsageObject, *names: str) -> int:
    """The first of several spellings present (camelCase or snake_case)."""
    for name in names:
        if usage.get(name) is not None:
            return _count(usage, name)
    return 0


def _openai_chat(usage: UsageObject) -> TokenCounts:
    return TokenCounts(
        input=_count(usage, "prompt_tokens"),
        cache_read=_count(usage, "prompt_tokens_details", "cached_tokens"),
        cache_write=_count(usage, "prompt_tokens_details", "cache_write_tokens"),
        output=_count(usage, "completion_tokens"),
        reasoning=_count(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def _openai_responses(usage: UsageObject) -> TokenCounts:
    return TokenCounts(
        input=_count(usage, "input_tokens"),
        cache_read=_count(usage, "input_tokens_details", "cached_tokens"),
        cache_write=_count(usage, "input_tokens_details", "cache_write_tokens"),
        output=_count(usage, "output_tokens"),
        reasoning=_count(usage, "output_tokens_details", "reasoning_tokens"),
    )


def _anthropic(usage: UsageObject) -> TokenCounts:
    # Anthropic's input_tokens counts only the uncached part of the prompt: cache reads and
    # cache writes are reported beside it and must be added to reach the total input.
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_write = _count(usage, "cache_creation_input_tokens")
    return TokenCounts(
        input=_count(usage, "input_tokens") + cache_read + cache_write,
        cache_read=cache_read,
        cache_write=cache_write,
        output=_count(usage, "output_tokens"),
        reasoning=_count(usage, "output_tokens_details", "thinking_tokens"),
    )


def _gemini(usage: UsageObject) -> TokenCounts:
    # Gemini reports thoughts beside the candidates, and tool-use prompt tokens beside the
    # prompt; both belong to the totals. Cached content is inside the prompt count.
    thoughts = _first_count(usage, "thoughtsTokenCount", "thoughts_token_count")
    return TokenCounts(
        input=_first_count(usage, "promptTokenCount", "prompt_token_count")
        + _first_count(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count"),
        cache_read=_first_count(usage, "cachedContentTokenCount", "cached_content_token_count"),
        cache_write=0,
        output=_first_count(usage, "candidatesTokenCount", "candidates_token_count") + thoughts,
        reasoning=thoughts,
    )


NORMALISERS: dict[str, Callable[[UsageObject], TokenCounts]] = {
    "anthropic": _anthropic,
    "gemini": _gemini,
    "openai.chat": _openai_chat,
    "openai.responses": _openai_responses,
}

USAGE_FORMATS = tuple(sorted(NORMALISERS))


def normalise_usage(usage_format: str, usage: UsageObject) -> TokenCounts:
    """Turn a provider's usage object (as a mapping) into checked inclusive buckets."""
    try:
        normaliser = NORMALISERS[usage_format]
    except KeyError:
        raise RecordError(
            f"unknown usage format {usage_format!r}; expected one of {', '.join(USAGE_FORMATS)}",
            field="usage_format",
        ) from None
    if not isinstance(usage, Mapping):
        raise RecordError("must be an object", field="usage")
    counts = normaliser(usage)
    for name, value in zip(counts._fields, counts, strict=True):
        # Each count was bounded as it was read; a bucket that adds several up (Anthropic's
        # input, Gemini's output) can still pass the bound: the object as a whole is at fault.
        if value > MAX_TOKENS:
            raise RecordError(
                f"{name} tokens add up to {value:,}, more than {MAX_TOKENS:,} in one call",
                field="usage",
            )
    return counts.check()
