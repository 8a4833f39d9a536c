"""Costing: exact integer arithmetic that equals genai-prices to the nano-USD."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import data_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.catalog import Catalog, load_overrides
from payoff.core.costing import PriceTable, TokenRates, rates_from_gpu_hour
from payoff.core.errors import AmountError, CatalogError, PeriodError, RateError
from payoff.core.money import format_nanousd, parse_usd_exact_nanousd, round_usd_to_nanousd
from payoff.core.periods import EPOCH, Period
from payoff.core.tokens import (
    DETAIL_FIELDS,
    MODALITIES,
    NO_DETAILS,
    TokenCounts,
    UsageDetails,
)

GPT_4O = TokenRates(
    input_mtok=Decimal("2.5"), output_mtok=Decimal("10"), cache_read_mtok=Decimal("1.25")
)


@pytest.mark.parametrize(
    ("counts", "visible", "expected"),
    [
        # 200 uncached input at 2.5 + 1000 cached at 1.25 + 300 output at 10 (per MTok).
        (TokenCounts(1200, 1000, 0, 300, 200), False, (4_750_000, 0)),
        # Visible: the 100 non-reasoning output tokens at 10 per MTok.
        (TokenCounts(1200, 1000, 0, 300, 200), True, (4_750_000, 1_000_000)),
        (TokenCounts(0, 0, 0, 0, 0), True, (0, 0)),
        (TokenCounts(1, 0, 0, 0, 0), False, (2_500, 0)),
    ],
)
def test_flat_table(counts: TokenCounts, visible: bool, expected: tuple[int, int]) -> None:
    assert PriceTable.flat(GPT_4O).cost_nanousd(counts, visible=visible) == expected


@pytest.mark.parametrize(("tokens", "expected"), [(1, 2), (3, 8), (5, 12), (4, 10)])
def test_rounding_to_nano_usd_is_half_even(tokens: int, expected: int) -> None:
    # 0.0025 USD per MTok is 2.5 nano-USD per token: 2.5 -> 2, 7.5 -> 8, 12.5 -> 12.
    cheap = TokenRates(input_mtok=Decimal("0.0025"), output_mtok=Decimal("0"))
    assert PriceTable.flat(cheap).cost_nanousd(TokenCounts(tokens, 0, 0, 0, 0))[0] == expected


def test_cache_write_and_reasoning_priced_separately_when_the_model_says_so() -> None:
    rates = TokenRates(
        input_mtok=Decimal("3"),
        output_mtok=Decimal("15"),
        cache_read_mtok=Decimal("0.3"),
        cache_write_mtok=Decimal("3.75"),
        reasoning_mtok=Decimal("20"),
    )
    counts = TokenCounts(
        input=10_000, cache_read=6_000, cache_write=2_000, output=1_000, reasoning=400
    )
    # 2,000 uncached x 3 + 6,000 x 0.3 + 2,000 x 3.75 + 600 x 15 + 400 x 20 (USD per MTok)
    expected_usd = (
        Decimal("0.006")
        + Decimal("0.0018")
        + Decimal("0.0075")
        + Decimal("0.009")
        + Decimal("0.008")
    )
    assert PriceTable.flat(rates).cost_nanousd(counts)[0] == round_usd_to_nanousd(expected_usd)


def test_cliff_tier_applies_above_its_start_only() -> None:
    base = TokenRates(input_mtok=Decimal("1"), output_mtok=Decimal("2"))
    high = TokenRates(input_mtok=Decimal("2"), output_mtok=Decimal("4"))
    table = PriceTable(tiers=((-1, base), (200_000, high)))
    assert table.cost_nanousd(TokenCounts(200_000, 0, 0, 0, 0))[0] == 200_000_000
    assert table.cost_nanousd(TokenCounts(200_001, 0, 0, 0, 0))[0] == 400_002_000


def test_price_table_refuses_bad_tiers() -> None:
    rates = TokenRates(input_mtok=Decimal("1"), output_mtok=Decimal("1"))
    with pytest.raises(RateError, match="base rates"):
        PriceTable(tiers=((0, rates),))
    with pytest.raises(RateError, match="ascending"):
        PriceTable(tiers=((-1, rates), (5, rates), (5, rates)))
    with pytest.raises(RateError, match="non-negative"):
        PriceTable.flat(TokenRates(input_mtok=Decimal("-1"), output_mtok=Decimal("1")))


@pytest.mark.parametrize(
    ("gpu_hour_usd", "gpus", "input_tps", "output_tps"),
    [("NaN", 1, "10", "10"), ("-1", 1, "10", "10"), ("Infinity", 1, "10", "10"),
     ("1", 0, "10", "10"), ("1", 1, "0", "10"), ("1", 1, "10", "NaN"), ("1", 1, "sNaN", "10")],
)  # fmt: skip
def test_gpu_hour_rates_refuse_what_has_no_price(gpu_hour_usd, gpus, input_tps, output_tps) -> None:
    """Refused as RateError, never an InvalidOperation from comparing a NaN."""
    with pytest.raises(RateError):
        rates_from_gpu_hour(Decimal(gpu_hour_usd), gpus, Decimal(input_tps), Decimal(output_tps))


def test_an_override_without_a_finite_gpu_price_is_a_catalog_error(tmp_path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "prices:\n  - {provider: lab, model: m1, gpu_hour_usd: 'NaN',\n"
        "     input_tokens_per_second: '10', output_tokens_per_second: '10'}\n"
    )
    with pytest.raises(CatalogError, match=r"\$\.prices\[0\]: gpu_hour_usd must be finite"):
        load_overrides(path)


def test_gpu_hour_rates() -> None:
    rates = rates_from_gpu_hour(Decimal("2.40"), 4, Decimal("40000"), Decimal("1200"))
    # 9.60 USD an hour / (40,000 tok/s x 3600 s) x 1e6 = 0.0666... USD per MTok
    assert rates.input_mtok == Decimal("0.066666667")
    assert rates.output_mtok == Decimal("2.222222222")


def test_money_formatting_and_parsing() -> None:
    assert format_nanousd(1) == "0.000000001"
    assert format_nanousd(12_340_000_000) == "12.340000000"
    assert parse_usd_exact_nanousd("0.004") == 4_000_000
    for bad in ("abc", "-1", "0.0000000001", "NaN", "Infinity"):
        with pytest.raises(AmountError):  # a ValueError too, for callers that catch that
            parse_usd_exact_nanousd(bad)


@pytest.mark.parametrize("label", ["2026-13", "2026-1", "26-01", "1899-12", "9999-01", ""])
def test_a_bad_period_is_a_period_error(label: str) -> None:
    with pytest.raises(PeriodError, match="period"):
        Period.month(label)
    assert issubclass(PeriodError, ValueError)  # callers wrap ValueError in their own error


# -- the catalog against genai-prices ------------------------------------------------------

ALL_MODELS = [
    (provider.id, model.id)
    for provider in data_snapshot.get_snapshot().providers
    for model in provider.models
]
counts_strategy = st.integers(0, 2_000_000).flatmap(
    lambda inp: st.tuples(
        st.just(inp),
        st.integers(0, inp // 2),
        st.integers(0, inp // 2),
        st.integers(0, 200_000).flatmap(lambda out: st.tuples(st.just(out), st.integers(0, out))),
    )
)


@settings(max_examples=600, deadline=None)
@given(
    model=st.sampled_from(ALL_MODELS),
    raw=counts_strategy,
    batch=st.booleans(),
    seconds=st.integers(1_640_000_000, 1_830_000_000),
)
def test_catalog_cost_equals_genai_prices(
    model: tuple[str, str], raw: tuple[int, int, int, tuple[int, int]], batch: bool, seconds: int
) -> None:
    provider, model_ref = model
    inp, cache_read, cache_write, (out, reasoning) = raw
    counts = TokenCounts(inp, cache_read, cache_write, out, reasoning)
    at_us = seconds * 10**6
    table = Catalog().price_table(provider, model_ref, batch, at_us)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = genai_prices.calc_price(
                genai_prices.Usage(
                    input_tokens=inp,
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                    output_tokens=out,
                    output_reasoning_tokens=reasoning,
                ),
                model_ref,
                provider_id=provider,
                genai_request_timestamp=EPOCH + dt.timedelta(microseconds=at_us),
                price_context={"processing": "batch"} if batch else None,
            ).total_price
        except (LookupError, ValueError):
            expected = None
    if table is None:
        # Unpriced: genai-prices has no token price for it (or cannot price it either).
        assert expected is None or expected == 0
    else:
        assert expected is not None
        assert table.cost_nanousd(counts)[0] == round_usd_to_nanousd(expected)


def test_unknown_model_is_unpriced_not_free() -> None:
    assert Catalog().price_table("nobody", "mystery-1", False, 1_790_000_000 * 10**6) is None
    assert (
        Catalog().price_table("openai", "no-such-model-xyz", False, 1_790_000_000 * 10**6) is None
    )


def test_time_of_day_prices_resolve_per_window() -> None:
    # DeepSeek's off-peak window: the price at 17:00 UTC differs from the price at 10:00 UTC.
    catalog = Catalog()
    day = 1_735_776_000 * 10**6  # 2025-01-02T00:00:00Z
    peak = catalog.price_table("deepseek", "deepseek-chat", False, day + 10 * 3600 * 10**6)
    off_peak = catalog.price_table("deepseek", "deepseek-chat", False, day + 17 * 3600 * 10**6)
    assert peak is not None and off_peak is not None
    counts = TokenCounts(1_000_000, 0, 0, 0, 0)
    for at_us, table in ((day + 10 * 3600 * 10**6, peak), (day + 17 * 3600 * 10**6, off_peak)):
        expected = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1_000_000),
            "deepseek-chat",
            provider_id="deepseek",
            genai_request_timestamp=EPOCH + dt.timedelta(microseconds=at_us),
        ).total_price
        assert table.cost_nanousd(counts)[0] == round_usd_to_nanousd(expected)


def test_overrides_win_and_start_on_their_date(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "prices.yaml"
    path.write_text(
        "prices:\n"
        "  - {provider: openai, model: gpt-4o, from: 2026-11-15,\n"
        "     input_mtok: '2', output_mtok: '8'}\n"
        "  - {provider: self-hosted, model: llama, gpu_hour_usd: '3.60', gpus: 1,\n"
        "     input_tokens_per_second: 1000, output_tokens_per_second: 100}\n"
    )
    catalog = Catalog(load_overrides(path))
    before = 1_794_614_400 * 10**6  # 2026-11-14
    after = before + 2 * 86_400 * 10**6
    counts = TokenCounts(1_000_000, 0, 0, 0, 0)
    assert (
        catalog.price_table("openai", "gpt-4o", False, before).cost_nanousd(counts)[0]
        == 2_500_000_000
    )  # type: ignore[union-attr]
    assert (
        catalog.price_table("openai", "gpt-4o", False, after).cost_nanousd(counts)[0]
        == 2_000_000_000
    )  # type: ignore[union-attr]
    # 3.60 USD an hour / 3,600,000 tokens an hour = 1 USD per million input tokens.
    assert (
        catalog.price_table("self-hosted", "llama", False, after).cost_nanousd(counts)[0] == 10**9
    )  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prices:\n  - {provider: a, model: b, input_mtok: '1'}\n", "output_mtok"),
        ("prices:\n  - {provider: a, model: b, input_mtok: '1', output_mtok: '1', x: 1}\n", "x"),
        ("prices:\n  - {provider: a, model: b, gpu_hour_usd: '1'}\n", "tokens_per_second"),
        (
            "prices:\n  - {provider: a, model: b, input_mtok: '-1', output_mtok: '1'}\n",
            "non-negative",
        ),
    ],
)
def test_bad_overrides_name_the_entry_and_field(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message) as caught:
        load_overrides(path)
    assert "prices" in str(caught.value)


# -- record format v2: details priced apart ---------------------------------------------------

GEMINI_FLASH = TokenRates(
    input_mtok=Decimal("0.3"),
    output_mtok=Decimal("2.5"),
    cache_read_mtok=Decimal("0.03"),
    input_audio_mtok=Decimal("1"),
    cache_audio_read_mtok=Decimal("0.1"),
    output_image_mtok=Decimal("30"),
    web_searches_kcount=Decimal("35"),
)


def test_each_detail_is_priced_at_its_most_specific_rate() -> None:
    counts = TokenCounts(input=10_000, cache_read=6_000, cache_write=0, output=2_000, reasoning=500)
    details = UsageDetails(
        input_audio=3_000, cache_audio_read=1_000, output_image=1_290, web_search_requests=2
    )
    # Per MTok: 1,000 cached audio x 0.1 + 5,000 other cached x 0.03 + 2,000 uncached audio
    # x 1 + 2,000 uncached text x 0.3; 1,290 image x 30 + 210 text and 500 reasoning x 2.5;
    # and 2 searches at 35 per thousand.
    expected_usd = (
        Decimal("0.0001")
        + Decimal("0.00015")
        + Decimal("0.002")
        + Decimal("0.0006")
        + Decimal("0.0387")
        + Decimal("0.001775")
        + Decimal("0.07")
    )
    table = PriceTable.flat(GEMINI_FLASH)
    total, visible = table.cost_nanousd(counts, visible=True, details=details)
    assert total == round_usd_to_nanousd(expected_usd)
    # What the end user sees: the image and the 210 text tokens, at their own rates.
    assert visible == round_usd_to_nanousd(Decimal("0.0387") + Decimal("0.000525"))
    # Without details (a version-1 record) every token is text.
    assert table.cost_nanousd(counts)[0] == round_usd_to_nanousd(
        Decimal("0.0012") + Decimal("0.00018") + Decimal("0.005")
    )
    assert table.cost_nanousd(counts, details=NO_DETAILS) == table.cost_nanousd(counts)


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"cache_audio_read_mtok": "0.1", "input_audio_mtok": "1"}, "needs cache_read_mtok"),
        ({"cache_read_mtok": "0.1", "input_audio_mtok": "1"}, "give cache_audio_read_mtok"),
        ({"cache_write_mtok": "1", "input_audio_mtok": "1"}, "cannot be priced together"),
        ({"reasoning_mtok": "3", "output_image_mtok": "30"}, "cannot be priced together"),
        ({"cache_write_1h_mtok": "2"}, "needs cache_write_mtok"),
    ],
)
def test_rates_whose_parts_overlap_without_a_price_are_refused(
    rates: dict[str, str], message: str
) -> None:
    given = {name: Decimal(rate) for name, rate in rates.items()}
    with pytest.raises(RateError, match=message):
        PriceTable.flat(TokenRates(input_mtok=Decimal(1), output_mtok=Decimal(2), **given))


def test_an_override_prices_details_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "prices.yaml"
    path.write_text(
        "prices:\n  - {provider: google, model: gemini-2.5-flash, input_mtok: '0.2',"
        " output_mtok: '2', input_audio_mtok: '0.8', web_searches_kcount: '30'}\n"
    )
    table = Catalog(load_overrides(path)).price_table("google", "gemini-2.5-flash", False, 0)
    assert table is not None
    counts = TokenCounts(1_000_000, 0, 0, 0, 0)
    details = UsageDetails(input_audio=1_000_000, web_search_requests=1)
    assert table.cost_nanousd(counts, details=details)[0] == 800_000_000 + 30_000_000


@st.composite
def usage_v2(draw: st.DrawFn) -> tuple[TokenCounts, UsageDetails]:
    """Counts and details that fit together: every disjoint part drawn, then summed."""
    part = st.integers(0, 300_000)
    media = {m: (draw(part), draw(part)) for m in MODALITIES}  # (uncached, cached)
    text_uncached, text_cached, cache_write = draw(part), draw(part), draw(part)
    cache_write_1h = draw(st.integers(0, cache_write))
    outputs = {m: draw(st.integers(0, 20_000)) for m in MODALITIES}
    text_out, reasoning = draw(st.integers(0, 50_000)), draw(st.integers(0, 50_000))
    cached = sum(c for _, c in media.values())
    counts = TokenCounts(
        input=text_uncached + text_cached + cache_write + sum(u + c for u, c in media.values()),
        cache_read=text_cached + cached,
        cache_write=cache_write,
        output=text_out + reasoning + sum(outputs.values()),
        reasoning=reasoning,
    )
    details = UsageDetails(
        **{f"input_{m}": u + c for m, (u, c) in media.items()},
        **{f"cache_{m}_read": c for m, (_, c) in media.items()},
        **{f"output_{m}": n for m, n in outputs.items()},
        cache_write_1h=cache_write_1h,
        web_search_requests=draw(st.integers(0, 20)),
    )
    return counts, details.check(counts)


def _genai_usage_v2(counts: TokenCounts, details: UsageDetails) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=counts.input,
        cache_read_tokens=counts.cache_read,
        cache_write_tokens=counts.cache_write,
        output_tokens=counts.output,
        output_reasoning_tokens=counts.reasoning,
        web_searches=details.web_search_requests,
        **{DETAIL_FIELDS[name]: value for name, value in details._asdict().items()
           if name != "web_search_requests"},
    )  # fmt: skip


DETAIL_PRICE_KEYS = {
    name for name in TokenRates.__dataclass_fields__ if name not in ("input_mtok", "output_mtok")
} - {"cache_read_mtok", "cache_write_mtok", "reasoning_mtok", "requests_kcount"}


def _prices_details(model: Any) -> bool:
    prices = model.prices if isinstance(model.prices, list) else [model.prices]
    variants = [variant.prices for variant in model.price_variants or ()]
    return any(
        getattr(getattr(price, "prices", price), key, None) is not None
        for price in [*prices, *variants]
        for key in DETAIL_PRICE_KEYS
    )


DETAIL_MODELS = [
    (provider.id, model.id)
    for provider in data_snapshot.get_snapshot().providers
    for model in provider.models
    if _prices_details(model)
]


@settings(max_examples=600, deadline=None)
@given(
    # Half of the draws from the models that price a detail apart.
    model=st.sampled_from(ALL_MODELS) | st.sampled_from(DETAIL_MODELS),
    usage=usage_v2(),
    batch=st.booleans(),
    seconds=st.integers(1_640_000_000, 1_830_000_000),
)
def test_catalog_cost_with_details_equals_genai_prices(
    model: tuple[str, str], usage: tuple[TokenCounts, UsageDetails], batch: bool, seconds: int
) -> None:
    provider, model_ref = model
    counts, details = usage
    at_us = seconds * 10**6
    table = Catalog().price_table(provider, model_ref, batch, at_us)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = genai_prices.calc_price(
                _genai_usage_v2(counts, details),
                model_ref,
                provider_id=provider,
                genai_request_timestamp=EPOCH + dt.timedelta(microseconds=at_us),
                price_context={"processing": "batch"} if batch else None,
            ).total_price
        except (LookupError, ValueError):
            expected = None
    if table is None:
        assert expected is None or expected == 0
    else:
        assert expected is not None
        assert table.cost_nanousd(counts, details=details)[0] == round_usd_to_nanousd(expected)


def test_the_models_that_price_details_are_many() -> None:
    # What the property test above draws half its models from.
    assert len(DETAIL_MODELS) > 100
    assert ("google", "gemini-2.5-flash") in DETAIL_MODELS
