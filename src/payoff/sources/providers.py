"""Token counts from the responses of the official provider SDKs, or their JSON bodies.

An application that already holds a `ChatCompletion`, a Responses API `Response`, an
Anthropic `Message` or a Gemini `GenerateContentResponse` should not have to know which of
its fields are inside which: this module finds the usage object, tells which provider format
it is in, and hands it to `payoff.core.tokens.normalise_usage`, the one place that knows the
bucket rules.

The SDKs are optional dependencies, so none is imported here. SDK objects are recognised by
the module and name of their class and read through pydantic's `model_dump()`; plain dicts are
recognised by their keys. When the keys fit more than one format (a bare
`{"input_tokens": .., "output_tokens": ..}` is both an OpenAI Responses and an Anthropic usage,
and the two disagree on what `input_tokens` means), the caller must say which: guessing
would silently bill cached tokens wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payoff.core.errors import RecordError
from payoff.core.tokens import (
    USAGE_FORMATS,
    TokenCounts,
    UsageDetails,
    normalise_usage,
    normalise_usage_details,
)

_PROVIDERS = {
    "anthropic": "anthropic",
    "gemini": "google",
    "openai.chat": "openai",
    "openai.responses": "openai",
}

# Where a whole response keeps its usage: OpenAI and Anthropic, Gemini REST, Gemini SDK.
_USAGE_FIELDS = ("usage", "usageMetadata", "usage_metadata")

# Where a whole response names its model: OpenAI and Anthropic, Gemini SDK, Gemini REST.
_MODEL_FIELDS = ("model", "model_version", "modelVersion")

# OpenAI SDK classes by name; subclasses such as ParsedChatCompletion are found by their bases.
_OPENAI_CLASSES = {
    "ChatCompletion": "openai.chat",
    "CompletionUsage": "openai.chat",
    "Response": "openai.responses",
    "ResponseUsage": "openai.responses",
}

# Keys that only one format's usage object has, camelCase (Gemini REST) and snake_case (SDK).
_GEMINI_KEYS = frozenset(
    {
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
        "prompt_token_count",
        "candidates_token_count",
        "thoughts_token_count",
        "cached_content_token_count",
        "tool_use_prompt_token_count",
        "total_token_count",
    }
)
_OPENAI_CHAT_KEYS = frozenset({"prompt_tokens", "completion_tokens"})
_ANTHROPIC_KEYS = frozenset(
    {"cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation", "server_tool_use"}
)
_OPENAI_RESPONSES_KEYS = frozenset({"input_tokens_details"})


def provider_for_format(usage_format: str) -> str:
    """The provider name payoff records carry for a usage format (Gemini's is `google`)."""
    try:
        return _PROVIDERS[usage_format]
    except KeyError:
        raise _unknown_format(usage_format) from None


def usage_from_response(response: Any, usage_format: str | None = None) -> tuple[str, TokenCounts]:
    """The usage format and the inclusive token counts of one model call.

    `response` is an SDK response or usage object, or a dict of either. `usage_format` is
    needed only when neither the object's class nor its keys tell the format apart.
    """
    chosen, fields = _usage_fields(response, usage_format)
    return chosen, normalise_usage(chosen, fields)


def usage_details_from_response(
    response: Any, usage_format: str | None = None
) -> tuple[str, TokenCounts, UsageDetails]:
    """`usage_from_response` with the call's record format v2 details: its audio, image and
    video tokens, one-hour cache writes and web searches, as the provider reports them."""
    chosen, fields = _usage_fields(response, usage_format)
    counts, details = normalise_usage_details(chosen, fields)
    return chosen, counts, details


def _usage_fields(response: Any, usage_format: str | None) -> tuple[str, Mapping[str, Any]]:
    """The usage format and the usage object of a response, as a mapping."""
    usage = _usage_part(response)
    told = _format_from_class(usage) or _format_from_class(response) or _format_from_body(response)
    if usage_format is not None and usage_format not in _PROVIDERS:
        raise _unknown_format(usage_format)
    if usage_format is not None and told is not None and told != usage_format:
        raise RecordError(
            f"usage_format {usage_format!r} contradicts the {type(response).__name__} given, "
            f"which is {told!r}",
            field="usage_format",
        )
    fields = _as_mapping(usage)
    return usage_format or told or _format_from_keys(fields), fields


def model_from_response(response: Any) -> str | None:
    """The model a whole response names, or None for a bare usage object."""
    for name in _MODEL_FIELDS:
        value = _get(response, name)
        if isinstance(value, str) and value:
            return value
    return None


def _get(obj: Any, name: str) -> Any:
    """A key of a mapping or an attribute of an object, None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _has(obj: Any, name: str) -> bool:
    return name in obj if isinstance(obj, Mapping) else hasattr(obj, name)


def _usage_part(response: Any) -> Any:
    """The usage object inside a whole response, or the argument itself when it is one."""
    for name in _USAGE_FIELDS:
        if _has(response, name):
            usage = _get(response, name)
            if usage is None:
                # Streams without include_usage, and some errors, return a response without one.
                raise RecordError("the response carries no usage", field=name)
            return usage
    return response


def _as_mapping(usage: Any) -> Mapping[str, Any]:
    """A usage object as a mapping of the field names core/tokens.py reads."""
    if isinstance(usage, Mapping):
        return usage
    dump = getattr(usage, "model_dump", None)
    if not callable(dump):
        raise RecordError(
            f"expected a provider response, usage object or dict, got {type(usage).__name__}",
            field="usage",
        )
    # by_alias=False gives google-genai's snake_case names rather than its camelCase aliases,
    # and exclude_none drops the unset optional fields every SDK carries.
    dumped = dump(by_alias=False, exclude_none=True)
    if not isinstance(dumped, Mapping):
        raise RecordError(f"{type(usage).__name__}.model_dump() gave no object", field="usage")
    return dumped


def _format_from_class(obj: Any) -> str | None:
    """The format an SDK object's class implies, None for dicts and unknown classes."""
    for klass in type(obj).__mro__:
        module = klass.__module__ or ""
        if module == "anthropic" or module.startswith("anthropic."):
            return "anthropic"
        if module.startswith("google.genai"):
            return "gemini"
        if module.startswith("openai.") and klass.__name__ in _OPENAI_CLASSES:
            return _OPENAI_CLASSES[klass.__name__]
    return None


def _format_from_body(response: Any) -> str | None:
    """The format a whole response dict declares by its type tag or its usage key."""
    if not isinstance(response, Mapping):
        return None
    if "usageMetadata" in response or "usage_metadata" in response:
        return "gemini"
    if response.get("object") == "chat.completion":
        return "openai.chat"
    if response.get("object") == "response":
        return "openai.responses"
    if response.get("type") == "message":
        return "anthropic"
    return None


def _format_from_keys(usage: Mapping[str, Any]) -> str:
    """The one format whose distinctive keys the usage object has; RecordError otherwise."""
    keys = set(usage)
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, Mapping):
        # Both OpenAI Responses and Anthropic have output_tokens_details; the inner key differs.
        keys.update(f"output_tokens_details.{key}" for key in output_details)
    candidates = {
        "gemini": bool(keys & _GEMINI_KEYS),
        "openai.chat": bool(keys & _OPENAI_CHAT_KEYS),
        "anthropic": bool(keys & _ANTHROPIC_KEYS)
        or "output_tokens_details.thinking_tokens" in keys,
        "openai.responses": bool(keys & _OPENAI_RESPONSES_KEYS)
        or "output_tokens_details.reasoning_tokens" in keys,
    }
    matched = [name for name, fits in candidates.items() if fits]
    if len(matched) == 1:
        return matched[0]
    if not matched and keys & {"input_tokens", "output_tokens"}:
        # The shared core of both formats, which disagree on whether input includes the cache.
        matched = ["openai.responses", "anthropic"]
    if matched:
        why = "could be " + " or ".join(matched)
    else:
        why = "fits none of " + ", ".join(USAGE_FORMATS)
    raise RecordError(
        f"cannot tell the usage format from its keys ({why}); pass usage_format explicitly",
        field="usage_format",
    )


def _unknown_format(usage_format: str) -> RecordError:
    return RecordError(
        f"unknown usage format {usage_format!r}; expected one of {', '.join(USAGE_FORMATS)}",
        field="usage_format",
    )
