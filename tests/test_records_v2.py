"""Record format version 2: the details of a usage record, beside version 1 unchanged.

Decoding is table-driven; idempotency and costing go through real ingest into a real ledger.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from factories import NOV_3, NOV_3_US, jsonl, usage
from payoff.catalog import Catalog
from payoff.core.errors import RecordError
from payoff.core.tokens import TokenCounts, UsageDetails
from payoff.records import UsageRecord, UsageRecordV2, decode_record, record_from_dict
from payoff.service import ingest_lines, numbered_lines
from payoff.store import open_store
from payoff.store.protocol import Store

GEMINI = {"provider": "google", "model": "gemini-2.5-flash"}
# A Gemini response with audio in the prompt, some of it read from the cache.
GEMINI_USAGE = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 600,
    "candidatesTokenCount": 50,
    "promptTokensDetails": [
        {"modality": "TEXT", "tokenCount": 200},
        {"modality": "AUDIO", "tokenCount": 800},
    ],
    "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 600}],
}


def decode(record: dict[str, Any]) -> Any:
    return decode_record(json.dumps(record), line=7)


def gemini(id: str, **fields: Any) -> dict[str, Any]:
    given = {"usage_format": "gemini", "usage": GEMINI_USAGE, **fields}
    return usage(id, **GEMINI, input_tokens=None, output_tokens=None, **given)


def test_a_version_1_record_is_decoded_as_it_always_was() -> None:
    record = decode(gemini("e1"))
    assert type(record) is UsageRecord
    assert record.usage_details() is None  # the audio in the usage object is not read
    assert record.token_counts() == TokenCounts(1000, 600, 0, 50, 0)


def test_a_version_2_record_reads_the_details_of_its_usage_object() -> None:
    record = decode(gemini("e1", version=2))
    assert type(record) is UsageRecordV2
    assert record.token_counts() == TokenCounts(1000, 600, 0, 50, 0)
    assert record.usage_details() == UsageDetails(input_audio=800, cache_audio_read=600)


def test_a_version_2_record_gives_its_details_as_fields() -> None:
    record = decode(
        usage("e1", version=2, input_tokens=1000, input_audio_tokens=800, web_search_requests=1)
    )
    assert record.usage_details() == UsageDetails(input_audio=800, web_search_requests=1)
    assert decode(usage("e1", version=1)).usage_details() is None


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (usage("e1", input_audio_tokens=1), "input_audio_tokens", 'add "version": 2'),
        (usage("e1", version=1, web_search_requests=1), "web_search_requests", '"version": 2'),
        (usage("e1", version=3), "version", "Invalid enum value"),
        (usage("e1", version=2, output_image_tokens=-1), "output_image_tokens", ">= 0"),
        (
            usage("e1", version=2, input_audio_tokens=1201),
            "input_tokens",
            "uncached audio, image and video tokens (1201) exceed input_tokens (1200)",
        ),
        (
            usage("e1", version=2, input_audio_tokens=10, cache_audio_read_tokens=11),
            "cache_audio_read_tokens",
            "exceed input_audio_tokens",
        ),
        (
            usage("e1", version=2, input_audio_tokens=10, cache_audio_read_tokens=10),
            "cache_read_tokens",
            "cached audio, image and video tokens (10) exceed cache_read_tokens (0)",
        ),
        (
            usage("e1", version=2, cache_write_tokens=5, cache_write_1h_tokens=6),
            "cache_write_1h_tokens",
            "exceed cache_write_tokens",
        ),
        (
            usage("e1", version=2, reasoning_tokens=200, output_image_tokens=101),
            "output_tokens",
            "reasoning_tokens (200) + audio, image and video output tokens (101)",
        ),
        (gemini("e1", version=2, input_audio_tokens=1), "input_audio_tokens", "not both"),
        (
            gemini(
                "e1",
                version=2,
                usage={**GEMINI_USAGE, "cacheTokensDetails": [{"modality": "AUDIO"}] * 2 + [1]},
            ),
            "usage.cacheTokensDetails[2]",
            "must be an object",
        ),
        (
            gemini(
                "e1",
                version=2,
                usage={
                    **GEMINI_USAGE,
                    "promptTokensDetails": [{"modality": "VIDEO", "tokenCount": -4}],
                },
            ),
            "usage.promptTokensDetails[0].tokenCount",
            "non-negative",
        ),
    ],
)
def test_bad_version_2_records_name_the_field(
    record: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(RecordError) as caught:
        decode(record)
    assert caught.value.line == 7
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_details_a_version_1_record_never_reads_never_refuse_it() -> None:
    # Whatever the usage object says beside the five buckets, version 1 stays as it was.
    odd = {**GEMINI_USAGE, "promptTokensDetails": "not a list"}
    assert decode(gemini("e1", usage=odd)).token_counts() == TokenCounts(1000, 600, 0, 50, 0)
    with pytest.raises(RecordError, match="must be a list"):
        decode(gemini("e1", usage=odd, version=2))


def test_other_kinds_take_no_version_2_field_whatever_the_order_of_their_fields() -> None:
    task = {"record": "task", "id": "t1", "customer": "acme", "status": "open", "time": NOV_3}
    for record in ({"version": 2, **task}, {**task, "version": 2}):
        with pytest.raises(RecordError) as caught:
            decode(record)
        assert (caught.value.field, caught.value.reason) == ("version", "unknown field")


def test_record_from_dict_reads_version_2_too() -> None:
    record = record_from_dict(usage("e1", version=2, output_audio_tokens=3))
    assert isinstance(record, UsageRecordV2)


# -- through ingest into a ledger --------------------------------------------------------------


def ingest(store: Store, *records: dict[str, Any]) -> Any:
    return ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))), workers=0)


def steps(store: Store, task: str = "t1") -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in store.task_steps(task, limit=100)}


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    store = open_store(tmp_path / "ledger.db")
    yield store
    store.close()


def test_the_details_are_kept_and_priced_and_version_1_is_priced_as_text(ledger: Store) -> None:
    report = ingest(ledger, gemini("v1", task="t1"), gemini("v2", task="t1", version=2))
    assert report.accepted == 2
    stored = steps(ledger)
    assert stored["v1"]["usage_details"] is None
    assert json.loads(stored["v2"]["usage_details"]) == {
        "cache_audio_read_tokens": 600,
        "input_audio_tokens": 800,
    }
    table = Catalog().price_table("google", "gemini-2.5-flash", False, NOV_3_US)
    assert table is not None
    counts = TokenCounts(1000, 600, 0, 50, 0)
    details = UsageDetails(input_audio=800, cache_audio_read=600)
    assert stored["v1"]["cost_nanousd"] == table.cost_nanousd(counts)[0]
    assert stored["v2"]["cost_nanousd"] == table.cost_nanousd(counts, details=details)[0]
    # 600 cached audio at 0.10 and 200 uncached at 1.00 per MTok, 200 text at 0.30 and
    # 50 output at 2.50: the audio costs more than text would have.
    assert stored["v2"]["cost_nanousd"] == 60_000 + 200_000 + 60_000 + 125_000
    assert stored["v2"]["cost_nanousd"] > stored["v1"]["cost_nanousd"]


def test_a_resent_version_2_record_is_a_duplicate_and_another_detail_a_conflict(
    ledger: Store,
) -> None:
    first = usage("e1", task="t1", version=2, output_audio_tokens=10)
    assert ingest(ledger, first).accepted == 1
    again = ingest(ledger, first, usage("e1", task="t1", version=2, output_audio_tokens=11))
    assert (again.duplicates, again.conflicts) == (1, 1)
    assert again.problems[0].field == "output_audio_tokens"
    # A version-2 record with no details is the version-1 record of the same content.
    plain = usage("e2", task="t1")
    assert ingest(ledger, plain).accepted == 1
    assert ingest(ledger, {**plain, "version": 2}).duplicates == 1


def test_every_cost_names_the_catalog_that_produced_it(ledger: Store, tmp_path: Path) -> None:
    ingest(ledger, usage("e1", task="t1"), usage("tool", task="t1", kind="tool", cost="0.01"))
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(
        "prices:\n  - {provider: openai, model: gpt-4o, input_mtok: '2', output_mtok: '8'}\n"
    )
    catalog = Catalog.from_file(overrides)
    ingest_lines(
        ledger,
        numbered_lines(io.BytesIO(jsonl(usage("e2", task="t1")))),
        catalog=catalog,
        workers=0,
    )
    stored = steps(ledger)
    assert stored["e1"]["cost_catalog"] == Catalog.source()
    assert stored["e1"]["cost_overrides"] is None
    assert stored["tool"]["cost_catalog"] is None  # the record gave its cost
    assert stored["e2"]["cost_catalog"] == Catalog.source()
    assert stored["e2"]["cost_overrides"] == catalog.identity().overrides_sha256
    assert catalog.identity().overrides_sha256.startswith("sha256:")
    # The same overrides written another way are the same catalog; another rate is not.
    overrides.write_text(
        "prices:\n  - provider: openai\n    output_mtok: '8.0'\n    model: gpt-4o\n"
        "    input_mtok: '2.00'\n    batch: null\n"
    )
    assert Catalog.from_file(overrides).identity() == catalog.identity()
    overrides.write_text(
        "prices:\n  - {provider: openai, model: gpt-4o, input_mtok: '2', output_mtok: '8.01'}\n"
    )
    assert Catalog.from_file(overrides).identity() != catalog.identity()


def test_a_batch_that_fails_leaves_no_catalog_behind_and_the_next_one_stores_it(
    ledger: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payoff.records import decode_record
    from payoff.rows import RowBuilder
    from payoff.store.protocol import WriteBatch

    builder = RowBuilder(Catalog())

    def batch(id: str) -> WriteBatch:
        built = WriteBatch()
        builder.add(built, decode_record(json.dumps(usage(id, task="t1"))), 1)
        return built

    def fail(*_: object) -> None:
        raise RuntimeError("the disk is full")

    # A failure after the events and their catalog were written: the transaction rolls back.
    with monkeypatch.context() as patched:
        patched.setattr(ledger, "_ensure_customers", fail)
        with pytest.raises(RuntimeError):
            ledger.write(batch("e1"), lambda: NOV_3_US)
    ledger.write(batch("e2"), lambda: NOV_3_US)
    (step,) = steps(ledger).values()
    assert (step["id"], step["cost_catalog"]) == ("e2", Catalog.source())
