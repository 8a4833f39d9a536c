"""Provider SDK responses to inclusive token buckets, on real SDK objects built locally."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import anthropic.types as anthropic_types
import genai_prices
import pytest
from google.genai import types as genai_types
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion
from openai.types.responses import Response, ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

import sdk_support
from payoff.catalog import Catalog
from payoff.core.errors import RecordError
from payoff.core.money import round_usd_to_nanousd
from payoff.core.tokens import TokenCounts
from payoff.records import UsageRecord, record_from_dict
from payoff.sources.providers import (
    model_from_response,
    provider_for_format,
    usage_from_response,
)
from sdk_support import anthropic_message, chat_usage, gemini_response, gemini_usage

NOV_3 = dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC)
NOV_3_US = int(NOV_3.timestamp()) * 10**6


# The dated model names the provider APIs answer with.
CHAT_MODEL = "gpt-4o-mini-2024-07-18"
RESPONSES_MODEL = "gpt-5-2025-08-07"


def chat_completion(usage: CompletionUsage | None) -> ChatCompletion:
    return sdk_support.chat_completion(usage, model=CHAT_MODEL)


def responses_response() -> Response:
    return sdk_support.responses_response(model=RESPONSES_MODEL)


# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_chat_completion_keeps_cached_and_reasoning_inside_totals() -> None:
    fmt, counts = usage_from_response(chat_completion(chat_usage()))
    assert fmt == "openai.chat"
    assert counts == TokenCounts(
        input=1497, cache_read=1408, cache_write=0, output=1037, reasoning=256
    )


def test_openai_completion_usage_alone_is_recognised_by_its_class() -> None:
    assert usage_from_response(chat_usage()) == (
        "openai.chat",
        TokenCounts(1497, 1408, 0, 1037, 256),
    )


def test_openai_chat_usage_without_details_counts_no_cache() -> None:
    usage = CompletionUsage(prompt_tokens=438, completion_tokens=16, total_tokens=454)
    assert usage_from_response(usage) == ("openai.chat", TokenCounts(438, 0, 0, 16, 0))


def test_openai_responses_response_keeps_cached_and_reasoning_inside_totals() -> None:
    fmt, counts = usage_from_response(responses_response())
    assert fmt == "openai.responses"
    assert counts == TokenCounts(
        input=9299, cache_read=8448, cache_write=0, output=577, reasoning=512
    )


def test_openai_response_usage_alone_is_recognised_by_its_class() -> None:
    usage = responses_response().usage
    assert usage_from_response(usage) == (
        "openai.responses",
        TokenCounts(9299, 8448, 0, 577, 512),
    )


def test_openai_responses_cache_writes_are_a_part_of_input() -> None:
    usage = ResponseUsage(
        input_tokens=8576,
        input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=4418),
        output_tokens=52,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=32),
        total_tokens=8628,
    )
    assert usage_from_response(usage)[1] == TokenCounts(8576, 0, 4418, 52, 32)


def test_a_response_without_usage_is_refused() -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response(chat_completion(None))
    assert caught.value.field == "usage"


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_cache_double_count_input_adds_cache_and_cost_counts_it_once() -> None:
    # Anthropic's input_tokens (4) is only the uncached tail of the prompt; the 1163 cached
    # tokens read and the 10 written are reported beside it.
    message = anthropic_message(
        anthropic_types.Usage(
            input_tokens=4,
            cache_read_input_tokens=1163,
            cache_creation_input_tokens=10,
            output_tokens=202,
        )
    )
    fmt, counts = usage_from_response(message)
    assert fmt == "anthropic"
    assert counts == TokenCounts(
        input=4 + 1163 + 10, cache_read=1163, cache_write=10, output=202, reasoning=0
    )

    table = Catalog().price_table("anthropic", "claude-sonnet-4-5", False, NOV_3_US)
    assert table is not None
    cost, _ = table.cost_nanousd(counts)
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1177, cache_read_tokens=1163, cache_write_tokens=10, output_tokens=202
        ),
        "claude-sonnet-4-5",
        provider_id="anthropic",
        genai_request_timestamp=NOV_3,
    )
    assert cost == round_usd_to_nanousd(expected.total_price)
    # By hand, in nano-USD per token: 4 uncached at 3, 1163 read at 0.3, 10 written at 3.75,
    # 202 output at 15 (USD per million tokens).
    assert cost == 4 * 3000 + 1163 * 300 + 10 * 3750 + 202 * 15000
    # Counting the cache twice (cache parts added to an input that already has them) costs
    # more, which is the bug this guards against.
    doubled = counts._replace(input=counts.input + 1163 + 10)
    assert table.cost_nanousd(doubled)[0] > cost


def test_anthropic_usage_without_cache_keys_is_recognised_by_its_module() -> None:
    # {"input_tokens", "output_tokens"} alone also fits OpenAI Responses; the class decides.
    usage = anthropic_types.Usage(input_tokens=17, output_tokens=220)
    assert usage_from_response(usage) == ("anthropic", TokenCounts(17, 0, 0, 220, 0))


def test_anthropic_thinking_tokens_are_inside_output() -> None:
    usage = anthropic_types.Usage.model_validate(
        {
            "input_tokens": 2390,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "output_tokens": 121,
            "output_tokens_details": {"thinking_tokens": 28},
        }
    )
    assert usage_from_response(usage)[1] == TokenCounts(2390, 0, 0, 121, 28)


def test_anthropic_dict_with_cache_keys_is_detected() -> None:
    usage = {"input_tokens": 3, "cache_read_input_tokens": 1111, "output_tokens": 406}
    assert usage_from_response(usage) == ("anthropic", TokenCounts(1114, 1111, 0, 406, 0))


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_thoughts_outside_candidates_are_added_to_output() -> None:
    fmt, counts = usage_from_response(gemini_response())
    assert fmt == "gemini"
    assert counts == TokenCounts(
        input=373 + 40, cache_read=204, cache_write=0, output=89 + 167, reasoning=167
    )
    # Gemini's own total agrees: thoughts and tool-use prompt tokens are in it.
    assert counts.total == 669


def _gemini_shapes() -> list[tuple[str, Any]]:
    response = gemini_response()
    rest_body = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    return [
        ("sdk response", response),
        ("sdk usage metadata", response.usage_metadata),
        (
            "sdk parsed from REST json",
            genai_types.GenerateContentResponse.model_validate(rest_body),
        ),
        ("REST body, camelCase", rest_body),
        ("REST usageMetadata, camelCase", rest_body["usageMetadata"]),
        ("python dict, snake_case", response.model_dump(by_alias=False, exclude_none=True)),
        ("python usage_metadata, snake_case", gemini_usage().model_dump(exclude_none=True)),
    ]


@pytest.mark.parametrize(("shape", "given"), _gemini_shapes(), ids=[s for s, _ in _gemini_shapes()])
def test_gemini_sdk_snake_case_and_rest_camel_case_agree(shape: str, given: Any) -> None:
    assert usage_from_response(given) == ("gemini", TokenCounts(413, 204, 0, 256, 167))


def test_gemini_rest_body_really_is_camel_case() -> None:
    usage = _gemini_shapes()[3][1]["usageMetadata"]
    assert "thoughtsTokenCount" in usage
    assert "thoughts_token_count" not in usage


# --- dicts, detection and ambiguity ---------------------------------------------------------


def test_whole_response_dicts_are_detected() -> None:
    chat = chat_completion(chat_usage()).model_dump()
    responses = responses_response().model_dump()
    message = anthropic_message(anthropic_types.Usage(input_tokens=5, output_tokens=7))
    assert usage_from_response(chat)[0] == "openai.chat"
    assert usage_from_response(responses)[0] == "openai.responses"
    # Only the `type: message` tag tells this one apart: its usage has no cache keys.
    assert usage_from_response(message.model_dump()) == ("anthropic", TokenCounts(5, 0, 0, 7, 0))


def test_bare_usage_dicts_are_detected_by_their_keys() -> None:
    assert usage_from_response({"prompt_tokens": 12, "completion_tokens": 5})[0] == "openai.chat"
    responses = {
        "input_tokens": 22,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 6,
    }
    assert usage_from_response(responses)[0] == "openai.responses"
    reasoning = {
        "input_tokens": 1,
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 2},
    }
    assert usage_from_response(reasoning)[0] == "openai.responses"
    thinking = {
        "input_tokens": 1,
        "output_tokens": 6,
        "output_tokens_details": {"thinking_tokens": 2},
    }
    assert usage_from_response(thinking)[0] == "anthropic"
    assert usage_from_response({"promptTokenCount": 4, "candidatesTokenCount": 2})[0] == "gemini"


@pytest.mark.parametrize(
    "given",
    [
        {"input_tokens": 10, "output_tokens": 5},
        {"model": "some-model", "usage": {"input_tokens": 10, "output_tokens": 5}},
    ],
    ids=["bare usage", "whole response"],
)
def test_input_and_output_tokens_alone_are_ambiguous(given: dict[str, Any]) -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response(given)
    assert caught.value.field == "usage_format"
    assert "openai.responses or anthropic" in str(caught.value)
    assert "pass usage_format explicitly" in str(caught.value)


def test_an_explicit_usage_format_settles_the_ambiguity() -> None:
    given = {"input_tokens": 10, "output_tokens": 5}
    assert usage_from_response(given, "anthropic") == ("anthropic", TokenCounts(10, 0, 0, 5, 0))
    assert usage_from_response(given, "openai.responses")[0] == "openai.responses"


@pytest.mark.parametrize(
    "given",
    [
        {"prompt_tokens": 10, "completion_tokens": 5, "cache_read_input_tokens": 3},
        {"promptTokenCount": 10, "input_tokens_details": {"cached_tokens": 1}},
        {},
        {"tokens": 12},
    ],
    ids=["chat and anthropic keys", "gemini and responses keys", "empty", "unknown keys"],
)
def test_keys_of_several_formats_or_none_are_refused(given: dict[str, Any]) -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response(given)
    assert caught.value.field == "usage_format"


def test_a_usage_format_contradicting_the_sdk_class_is_refused() -> None:
    message = anthropic_message(
        anthropic_types.Usage(input_tokens=4, cache_read_input_tokens=1163, output_tokens=202)
    )
    with pytest.raises(RecordError) as caught:
        usage_from_response(message, "openai.responses")
    assert caught.value.field == "usage_format"
    assert usage_from_response(message, "anthropic")[1].input == 1167


def test_an_unknown_usage_format_is_refused() -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response({"prompt_tokens": 1, "completion_tokens": 1}, "openai.completions")
    assert caught.value.field == "usage_format"


@pytest.mark.parametrize("given", [42, "usage", [1, 2], None], ids=repr)
def test_something_that_is_no_usage_object_is_refused(given: Any) -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response(given, "openai.chat")
    assert caught.value.field == "usage"


# --- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage_format", "usage", "field"),
    [
        ("openai.chat", {"prompt_tokens": -1, "completion_tokens": 2}, "usage.prompt_tokens"),
        ("openai.chat", {"prompt_tokens": True, "completion_tokens": 2}, "usage.prompt_tokens"),
        (
            "openai.responses",
            {"input_tokens": 5, "input_tokens_details": {"cached_tokens": -3}, "output_tokens": 1},
            "usage.input_tokens_details.cached_tokens",
        ),
        ("anthropic", {"input_tokens": 1.5, "output_tokens": 2}, "usage.input_tokens"),
        (
            "anthropic",
            {"input_tokens": 1, "cache_read_input_tokens": "7", "output_tokens": 2},
            "usage.cache_read_input_tokens",
        ),
        ("gemini", {"promptTokenCount": "12"}, "usage.promptTokenCount"),
        ("gemini", {"thoughts_token_count": -2}, "usage.thoughts_token_count"),
    ],
)
def test_negative_or_non_integer_counts_name_the_field(
    usage_format: str, usage: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordError) as caught:
        usage_from_response(usage, usage_format)
    assert caught.value.field == field


def test_an_unvalidated_sdk_object_with_a_negative_count_names_the_field() -> None:
    usage = CompletionUsage.model_construct(prompt_tokens=-5, completion_tokens=1, total_tokens=-4)
    with pytest.raises(RecordError) as caught:
        usage_from_response(usage)
    assert caught.value.field == "usage.prompt_tokens"


def test_cached_tokens_beyond_the_prompt_are_refused() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 11},
    }
    with pytest.raises(RecordError) as caught:
        usage_from_response(usage)
    assert caught.value.field == "input_tokens"


# --- model, provider, records ---------------------------------------------------------------


def test_model_from_response() -> None:
    assert model_from_response(chat_completion(chat_usage())) == "gpt-4o-mini-2024-07-18"
    assert model_from_response(responses_response()) == "gpt-5-2025-08-07"
    message = anthropic_message(anthropic_types.Usage(input_tokens=1, output_tokens=1))
    assert model_from_response(message) == "claude-sonnet-4-5"
    assert model_from_response(gemini_response()) == "gemini-2.5-flash"
    rest_body = gemini_response().model_dump(by_alias=True, exclude_none=True)
    assert model_from_response(rest_body) == "gemini-2.5-flash"
    assert model_from_response({"model": "gpt-4o", "usage": {}}) == "gpt-4o"
    assert model_from_response(chat_usage()) is None
    assert model_from_response({"prompt_tokens": 1}) is None


@pytest.mark.parametrize(
    ("usage_format", "provider"),
    [
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("anthropic", "anthropic"),
        ("gemini", "google"),
    ],
)
def test_provider_for_format(usage_format: str, provider: str) -> None:
    assert provider_for_format(usage_format) == provider


def test_provider_for_an_unknown_format_is_refused() -> None:
    with pytest.raises(RecordError) as caught:
        provider_for_format("mistral")
    assert caught.value.field == "usage_format"


@pytest.mark.parametrize(
    "response",
    [
        chat_completion(chat_usage()),
        responses_response(),
        anthropic_message(
            anthropic_types.Usage(
                input_tokens=4,
                cache_read_input_tokens=1163,
                cache_creation_input_tokens=10,
                output_tokens=202,
            )
        ),
        gemini_response(),
    ],
    ids=["openai.chat", "openai.responses", "anthropic", "gemini"],
)
def test_a_record_built_from_a_response_carries_the_same_counts(response: Any) -> None:
    # The path an SDK integration takes: detect, then send the provider's own usage object.
    fmt, counts = usage_from_response(response)
    usage = response.usage if hasattr(response, "usage") else response.usage_metadata
    record = record_from_dict(
        {
            "id": "evt_1",
            "time": "2026-11-03T10:00:00Z",
            "customer": "c",
            "provider": provider_for_format(fmt),
            "model": model_from_response(response),
            "usage_format": fmt,
            "usage": usage.model_dump(mode="json", exclude_none=True),
        }
    )
    assert isinstance(record, UsageRecord)
    assert record.token_counts() == counts


def test_importing_the_module_imports_no_sdk() -> None:
    code = (
        "import sys, payoff.sources.providers\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic')"
        " or m.startswith('google.genai')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
