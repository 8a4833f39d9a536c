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

Record format v2 adds `UsageDetails`: the parts of those totals that some models price apart
(audio, image and video tokens in and out, cached audio, image and video, one-hour cache
writes) and the tool requests a provider bills per request (web searches). Each detail sits
inside its total, as cached and reasoning tokens do; text is what remains. The same
normaliser reads both, and a version-1 record keeps only the five buckets, as it always has.

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
                    # Each count was bounded as it was read; a bucket adding several up
                    # (Anthropic's input, Gemini's output) can still pass: the object is at fault.
                    field="usage",
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


MODALITIES = ("audio", "image", "video")
"""The modalities priced apart from text; text is what remains of each total."""


class UsageDetails(NamedTuple):
    """Record format v2: parts of the buckets that some models price apart, and the tool
    requests a provider bills beside the tokens.

    `input_<modality>` is a part of `input` (cached tokens of that modality included);
    `cache_<modality>_read` is the part of both `cache_read` and `input_<modality>` read
    from the cache; `cache_write_1h` is the part of `cache_write` kept for an hour;
    `output_<modality>` is a part of `output` outside `reasoning`; `web_search_requests`
    counts searches run and billed by the provider. Text is what each total leaves.
    """

    input_audio: int = 0
    input_image: int = 0
    input_video: int = 0
    cache_audio_read: int = 0
    cache_image_read: int = 0
    cache_video_read: int = 0
    cache_write_1h: int = 0
    output_audio: int = 0
    output_image: int = 0
    output_video: int = 0
    web_search_requests: int = 0

    def check(self, counts: TokenCounts) -> UsageDetails:
        """Raise RecordError unless every detail is a count and fits the totals of `counts`.

        The disjoint parts must not be negative: each modality's uncached input, the cached
        text, the one-hour and other cache writes, the uncached text input and the text output.
        """
        for name, value in zip(self._fields, self, strict=True):
            if type(value) is not int or value < 0:
                raise RecordError(
                    f"must be a non-negative integer, got {value!r}", field=DETAIL_FIELDS[name]
                )
        cached_media = 0
        uncached_media = 0
        for modality in MODALITIES:
            given = getattr(self, f"input_{modality}")
            cached = getattr(self, f"cache_{modality}_read")
            if cached > given:
                raise _exceeds(f"cache_{modality}_read", cached, f"input_{modality}", given)
            cached_media += cached
            uncached_media += given - cached
        if cached_media > counts.cache_read:
            raise RecordError(
                f"cached audio, image and video tokens ({cached_media}) exceed "
                f"cache_read_tokens ({counts.cache_read})",
                field="cache_read_tokens",
            )
        if self.cache_write_1h > counts.cache_write:
            raise _exceeds("cache_write_1h", self.cache_write_1h, "cache_write", counts.cache_write)
        if counts.cache_read + counts.cache_write + uncached_media > counts.input:
            raise RecordError(
                f"cache_read_tokens ({counts.cache_read}) + cache_write_tokens "
                f"({counts.cache_write}) + uncached audio, image and video tokens "
                f"({uncached_media}) exceed input_tokens ({counts.input})",
                field="input_tokens",
            )
        media_output = self.output_audio + self.output_image + self.output_video
        if counts.reasoning + media_output > counts.output:
            raise RecordError(
                f"reasoning_tokens ({counts.reasoning}) + audio, image and video output "
                f"tokens ({media_output}) exceed output_tokens ({counts.output})",
                field="output_tokens",
            )
        return self


NO_DETAILS = UsageDetails()

DETAIL_FIELDS: dict[str, str] = {
    name: name if name.endswith("_requests") else f"{name}_tokens" for name in UsageDetails._fields
}
"""Each detail's field in a usage record (`input_audio` is `input_audio_tokens`)."""


def _exceeds(part: str, value: int, whole: str, total: int) -> RecordError:
    part_field = DETAIL_FIELDS.get(part, f"{part}_tokens")
    return RecordError(
        f"{part_field} ({value}) exceed {DETAIL_FIELDS.get(whole, f'{whole}_tokens')} ({total})",
        field=part_field,
    )


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


# -- the five buckets (record format v1) ----------------------------------------------------


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


# -- the details (record format v2) ---------------------------------------------------------


def _openai_details(usage: UsageObject, input_details: str, output_details: str) -> UsageDetails:
    """The details of an OpenAI usage object (chat and responses name their detail objects
    apart), and of LiteLLM's, which hands every provider's usage over in the chat shape."""

    def inputs(*path: str) -> int:
        return _count(usage, input_details, *path)

    def outputs(name: str) -> int:
        return _count(usage, output_details, name)

    # LiteLLM reports an Anthropic web search under server_tool_use, or among the details.
    searches = _count(usage, "server_tool_use", "web_search_requests")
    return UsageDetails(
        input_audio=inputs("audio_tokens"),
        input_image=inputs("image_tokens"),
        input_video=inputs("video_tokens"),
        cache_audio_read=inputs("cached_tokens_details", "audio_tokens"),
        cache_image_read=inputs("cached_tokens_details", "image_tokens"),
        cache_video_read=inputs("cached_tokens_details", "video_tokens"),
        cache_write_1h=inputs("cache_creation_token_details", "ephemeral_1h_input_tokens"),
        output_audio=outputs("audio_tokens"),
        output_image=outputs("image_tokens"),
        output_video=outputs("video_tokens"),
        web_search_requests=searches or inputs("web_search_requests"),
    )


def _openai_chat_details(usage: UsageObject) -> UsageDetails:
    return _openai_details(usage, "prompt_tokens_details", "completion_tokens_details")


def _openai_responses_details(usage: UsageObject) -> UsageDetails:
    return _openai_details(usage, "input_tokens_details", "output_tokens_details")


def _anthropic_details(usage: UsageObject) -> UsageDetails:
    return UsageDetails(
        cache_write_1h=_count(usage, "cache_creation", "ephemeral_1h_input_tokens"),
        web_search_requests=_count(usage, "server_tool_use", "web_search_requests"),
    )


# Gemini's modalities as payoff (and genai-prices) price them: a document's pages are images.
_GEMINI_MODALITIES = {"AUDIO": "audio", "IMAGE": "image", "DOCUMENT": "image", "VIDEO": "video"}


def _gemini_modalities(usage: UsageObject, *names: str) -> dict[str, int]:
    """Tokens by modality in a Gemini `*TokensDetails` list (either spelling); text and
    unknown modalities are left out."""
    found = dict.fromkeys(MODALITIES, 0)
    name = next((n for n in names if usage.get(n) is not None), None)
    if name is None:
        return found
    entries = usage[name]
    if not isinstance(entries, list):
        raise RecordError("must be a list of {modality, tokenCount}", field=f"usage.{name}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise RecordError("must be an object", field=f"usage.{name}[{index}]")
        modality = entry.get("modality")
        # The SDK's model_dump() gives its MediaModality enum, whose value is the REST name.
        modality = _GEMINI_MODALITIES.get(str(getattr(modality, "value", modality)))
        if modality is None:
            continue
        count_name = "tokenCount" if entry.get("tokenCount") is not None else "token_count"
        count = entry.get(count_name) or 0
        if type(count) is not int or count < 0:
            raise RecordError(
                f"must be a non-negative integer, got {count!r}",
                field=f"usage.{name}[{index}].{count_name}",
            )
        found[modality] += count
    return found


def _gemini_details(usage: UsageObject) -> UsageDetails:
    # Tool-use prompt tokens are input beside the prompt (see _gemini), modalities included.
    prompt = _gemini_modalities(usage, "promptTokensDetails", "prompt_tokens_details")
    tool_use = _gemini_modalities(
        usage, "toolUsePromptTokensDetails", "tool_use_prompt_tokens_details"
    )
    cached = _gemini_modalities(usage, "cacheTokensDetails", "cache_tokens_details")
    output = _gemini_modalities(usage, "candidatesTokensDetails", "candidates_tokens_details")
    return UsageDetails(
        input_audio=prompt["audio"] + tool_use["audio"],
        input_image=prompt["image"] + tool_use["image"],
        input_video=prompt["video"] + tool_use["video"],
        cache_audio_read=cached["audio"],
        cache_image_read=cached["image"],
        cache_video_read=cached["video"],
        output_audio=output["audio"],
        output_image=output["image"],
        output_video=output["video"],
    )


class _Format(NamedTuple):
    counts: Callable[[UsageObject], TokenCounts]
    details: Callable[[UsageObject], UsageDetails]


FORMATS: dict[str, _Format] = {
    "anthropic": _Format(_anthropic, _anthropic_details),
    "gemini": _Format(_gemini, _gemini_details),
    "openai.chat": _Format(_openai_chat, _openai_chat_details),
    "openai.responses": _Format(_openai_responses, _openai_responses_details),
}

USAGE_FORMATS = tuple(sorted(FORMATS))


def normalise_usage(usage_format: str, usage: UsageObject) -> TokenCounts:
    """Turn a provider's usage object (as a mapping) into checked inclusive buckets.

    Record format v1: the five buckets, whatever details the object carries (they are not
    read, so a version-1 record means what it always meant).
    """
    return _format(usage_format, usage).counts(usage).check()


def normalise_usage_details(
    usage_format: str, usage: UsageObject
) -> tuple[TokenCounts, UsageDetails]:
    """Record format v2: the checked buckets and the checked details of a usage object."""
    reader = _format(usage_format, usage)
    counts = reader.counts(usage).check()
    return counts, reader.details(usage).check(counts)


def _format(usage_format: str, usage: UsageObject) -> _Format:
    try:
        reader = FORMATS[usage_format]
    except KeyError:
        raise RecordError(
            f"unknown usage format {usage_format!r}; expected one of {', '.join(USAGE_FORMATS)}",
            field="usage_format",
        ) from None
    if not isinstance(usage, Mapping):
        raise RecordError("must be an object", field="usage")
    return reader
