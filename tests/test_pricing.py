"""Token costs against the price table of /work/shared/reference/anthropic-and-otel.md.

Every expected amount below was worked out by hand from that page and written as a literal.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from seam.pricing import PriceTable, Usage, price_table

DAY = date(2026, 6, 1)  # before the Sonnet 5.5 cache-read cut
TABLE = PriceTable.load()


def cost(model: str, on: date = DAY, table: PriceTable = TABLE, **tokens: object) -> Decimal | None:
    return table.cost(model, Usage(**tokens), on)  # type: ignore[arg-type]


# A known call: 10K input, 20K 5-minute writes, 30K 1-hour writes, 40K cache reads, 50K output.
# The prompt is exactly 100K tokens, so no long-context band applies.
# cost = 0.01·input + 0.02·write5m + 0.03·write1h + 0.04·read + 0.05·output (rates per MTok).
KNOWN_CALL = {
    "input_tokens": 10_000,
    "cache_creation_input_tokens": 50_000,
    "cache_creation_5m_input_tokens": 20_000,
    "cache_creation_1h_input_tokens": 30_000,
    "cache_read_input_tokens": 40_000,
    "output_tokens": 50_000,
}

ROWS: list[tuple[list[str], Decimal]] = [
    # 10, 12.50, 20, 0.25, 50: 0.1 + 0.25 + 0.6 + 0.01 + 2.5
    (["claude-fable-5-1", "claude-mythos-5-1"], Decimal("3.46")),
    # 10, 12.50, 20, 1, 50: 0.1 + 0.25 + 0.6 + 0.04 + 2.5
    (["claude-fable-5", "claude-mythos-5"], Decimal("3.49")),
    # 4, 5, 8, 0.20, 20: 0.04 + 0.1 + 0.24 + 0.008 + 1
    (["claude-opus-5-5"], Decimal("1.388")),
    # 5, 6.25, 10, 0.50, 25: 0.05 + 0.125 + 0.3 + 0.02 + 1.25
    (["claude-opus-5"], Decimal("1.745")),
    (["claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
      "claude-opus-4-5-20251101"], Decimal("1.745")),
    # 15, 18.75, 30, 1.50, 75: 0.15 + 0.375 + 0.9 + 0.06 + 3.75
    (["claude-opus-4-1", "claude-opus-4-1-20250805", "claude-opus-4-0",
      "claude-opus-4-20250514"], Decimal("5.235")),
    # 2, 2.50, 4, 0.20, 10: 0.02 + 0.05 + 0.12 + 0.008 + 0.5
    (["claude-sonnet-5-5"], Decimal("0.698")),
    (["claude-sonnet-5"], Decimal("0.698")),
    # 3, 3.75, 6, 0.30, 15: 0.03 + 0.075 + 0.18 + 0.012 + 0.75
    (["claude-sonnet-4-6", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
      "claude-sonnet-4-0", "claude-sonnet-4-20250514"], Decimal("1.047")),
    # 0.10, 0.125, 0.20, 0.01, 0.50: 0.001 + 0.0025 + 0.006 + 0.0004 + 0.025
    (["claude-haiku-5-5"], Decimal("0.0349")),
    # 1, 1.25, 2, 0.10, 5: 0.01 + 0.025 + 0.06 + 0.004 + 0.25
    (["claude-haiku-4-5", "claude-haiku-4-5-20251001"], Decimal("0.349")),
    # 0.80, 1.00, 1.60, 0.08, 4: 0.008 + 0.02 + 0.048 + 0.0032 + 0.2
    (["claude-3-5-haiku-20241022"], Decimal("0.2792")),
    # 0.25, 0.30, 0.50, 0.03, 1.25: 0.0025 + 0.006 + 0.015 + 0.0012 + 0.0625
    (["claude-3-haiku-20240307"], Decimal("0.0872")),
]
CASES = [(model, expected) for ids, expected in ROWS for model in ids]


@pytest.mark.parametrize(("model", "expected"), CASES, ids=[m for m, _ in CASES])
def test_known_call_on_every_row_of_the_reference_table(model: str, expected: Decimal) -> None:
    got = cost(model, **KNOWN_CALL)
    assert isinstance(got, Decimal)
    assert got == expected


def test_fable_5_2_input_and_output_are_known() -> None:
    # 8 in, 40 out: 10K·8 + 50K·40 = 0.08 + 2
    assert cost("claude-fable-5-2", input_tokens=10_000, output_tokens=50_000) == Decimal("2.08")


@pytest.mark.parametrize("tokens", [
    {"cache_read_input_tokens": 1},
    {"cache_creation_input_tokens": 1},
    {"cache_creation_input_tokens": 1, "cache_creation_1h_input_tokens": 1},
])
def test_fable_5_2_unknown_cache_rates_make_the_cost_unknown(tokens: dict[str, int]) -> None:
    assert cost("claude-fable-5-2", input_tokens=1000, output_tokens=10, **tokens) is None


def test_table_covers_exactly_the_reference_models() -> None:
    reference = {model for ids, _ in ROWS for model in ids} | {"claude-fable-5-2"}
    assert reference <= set(TABLE.models)
    assert set(TABLE.models) - reference == {"offline", "claude-3-5-haiku-latest"}


@pytest.mark.parametrize(("kind", "rate"), [
    ("input_tokens", Decimal("4")),
    ("cache_creation_5m_input_tokens", Decimal("5")),
    ("cache_creation_1h_input_tokens", Decimal("8")),
    ("cache_read_input_tokens", Decimal("0.20")),
    ("output_tokens", Decimal("20")),
])
def test_each_rate_alone_for_a_million_tokens(kind: str, rate: Decimal) -> None:
    tokens: dict[str, int] = {kind: 1_000_000}
    if kind.startswith("cache_creation_"):
        tokens["cache_creation_input_tokens"] = 1_000_000
    assert cost("claude-opus-5-5", **tokens) == rate


def test_brief_example_opus_5_5() -> None:
    # 1M input at $4 + 100K output at $20/MTok = 4 + 2
    assert cost("claude-opus-5-5", input_tokens=1_000_000, output_tokens=100_000) == Decimal("6")


def test_money_is_exact_decimal() -> None:
    assert cost("claude-3-haiku-20240307", input_tokens=1) == Decimal("0.00000025")
    assert cost("claude-haiku-5-5", cache_read_input_tokens=3) == Decimal("0.00000003")
    assert cost("claude-opus-5-5") == Decimal("0")
    assert cost("offline", input_tokens=10**6, output_tokens=10**6) == Decimal("0")


# ---------------------------------------------------------------- dated prices


@pytest.mark.parametrize(("on", "expected"), [
    (date(2025, 1, 1), Decimal("0.20")),
    (date(2026, 10, 6), Decimal("0.20")),
    (date(2026, 10, 7), Decimal("0.10")),
    (date(2027, 3, 1), Decimal("0.10")),
])
def test_sonnet_5_5_cache_read_cut_on_2026_10_07(on: date, expected: Decimal) -> None:
    assert cost("claude-sonnet-5-5", on=on, cache_read_input_tokens=1_000_000) == expected
    # the other rates do not move: 1M input is $2 on either side
    assert cost("claude-sonnet-5-5", on=on, input_tokens=1_000_000) == Decimal("2")


def test_sonnet_5_keeps_its_cache_read_rate_after_the_cut() -> None:
    assert cost("claude-sonnet-5", on=date(2026, 12, 1),
                cache_read_input_tokens=1_000_000) == Decimal("0.20")


# ---------------------------------------------------------------- long-context bands


def test_haiku_5_5_at_100k_prompt_uses_the_standard_band() -> None:
    # 100,000 input at $0.10 + 1,000 output at $0.50
    assert cost("claude-haiku-5-5", input_tokens=100_000, output_tokens=1_000) == Decimal(
        "0.0105")


def test_haiku_5_5_over_100k_prompt_uses_the_higher_band() -> None:
    # 100,001 input at $0.50 + 1,000 output at $2.50 = 0.0500005 + 0.0025
    assert cost("claude-haiku-5-5", input_tokens=100_001, output_tokens=1_000) == Decimal(
        "0.0525005")


def test_haiku_5_5_cache_writes_count_toward_the_prompt_size() -> None:
    # 60K input + 50K 5-minute writes = 110K > 100K: 60K·0.50 + 50K·0.625 = 0.03 + 0.03125
    got = cost("claude-haiku-5-5", input_tokens=60_000, cache_creation_input_tokens=50_000)
    assert got == Decimal("0.06125")


def test_haiku_5_5_cache_reads_count_toward_the_prompt_size() -> None:
    # 60K input + 40K reads = 100K: standard band, 60K·0.10 + 40K·0.01 = 0.006 + 0.0004
    assert cost("claude-haiku-5-5", input_tokens=60_000,
                cache_read_input_tokens=40_000) == Decimal("0.0064")
    # one more read token crosses into the higher band, whose cache-read rate is unknown
    assert cost("claude-haiku-5-5", input_tokens=60_000,
                cache_read_input_tokens=40_001) is None


def test_haiku_5_5_higher_band_1h_write_is_unknown() -> None:
    assert cost("claude-haiku-5-5", input_tokens=200_000, cache_creation_input_tokens=10,
                cache_creation_1h_input_tokens=10) is None


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
                                   "claude-sonnet-4-0", "claude-sonnet-4-20250514"])
def test_sonnet_4_and_4_5_over_200k_use_long_context_rates(model: str) -> None:
    # at 200K: standard, 200K·3 + 10K·15 = 0.6 + 0.15
    assert cost(model, input_tokens=200_000, output_tokens=10_000) == Decimal("0.75")
    # over 200K: the whole request at 6 / 22.50, 200,001·6 + 10K·22.50 = 1.200006 + 0.225
    assert cost(model, input_tokens=200_001, output_tokens=10_000) == Decimal("1.425006")
    # cache reads count toward the size and take the long-context read rate (0.60):
    # 150K·6 + 100K·0.60 = 0.9 + 0.06
    assert cost(model, input_tokens=150_000, cache_read_input_tokens=100_000) == Decimal("0.96")
    # long-context writes: 5m 7.50, 1h 12: 150K·6 + 60K·7.50 + 40K·12 = 0.9 + 0.45 + 0.48
    assert cost(model, input_tokens=150_000, cache_creation_input_tokens=100_000,
                cache_creation_5m_input_tokens=60_000,
                cache_creation_1h_input_tokens=40_000) == Decimal("1.83")


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-sonnet-5-5", "claude-opus-5-5"])
def test_later_models_bill_long_prompts_at_standard_rates(model: str) -> None:
    standard = cost(model, input_tokens=1_000_000)
    assert standard is not None
    assert cost(model, input_tokens=1_000) == standard / 1000


# ---------------------------------------------------------------- modifiers


def test_batch_halves_every_rate() -> None:
    assert cost("claude-opus-5-5", input_tokens=1_000_000, output_tokens=100_000,
                service_tier="batch") == Decimal("3")
    assert cost("claude-opus-5-5", input_tokens=1_000_000, output_tokens=100_000,
                service_tier="standard") == Decimal("6")
    # known call on Haiku 4.5, batch: 0.349 / 2
    assert cost("claude-haiku-4-5", service_tier="batch", **KNOWN_CALL) == Decimal("0.1745")


@pytest.mark.parametrize(("model", "expected"), [
    # us_geo models: 100K input × 1.1 (100K keeps every model in its standard band)
    ("claude-opus-5-5", Decimal("0.44")),
    ("claude-opus-5", Decimal("0.55")),
    ("claude-opus-4-8", Decimal("0.55")),
    ("claude-opus-4-6", Decimal("0.55")),
    ("claude-sonnet-5-5", Decimal("0.22")),
    ("claude-haiku-5-5", Decimal("0.011")),
    ("claude-fable-5-1", Decimal("1.1")),
    # Opus 4.5 and older: no US-only surcharge
    ("claude-opus-4-5", Decimal("0.5")),
    ("claude-opus-4-5-20251101", Decimal("0.5")),
    ("claude-opus-4-1", Decimal("1.5")),
    ("claude-sonnet-4-5", Decimal("0.3")),
    ("claude-haiku-4-5", Decimal("0.1")),
    ("claude-3-haiku-20240307", Decimal("0.025")),
])
def test_us_only_inference_multiplier(model: str, expected: Decimal) -> None:
    assert cost(model, input_tokens=100_000, inference_geo="us") == expected


def test_non_us_geo_is_not_surcharged() -> None:
    assert cost("claude-opus-5-5", input_tokens=1_000_000, inference_geo="global") == Decimal("4")


def test_batch_and_us_geo_stack() -> None:
    # 6 × 0.5 × 1.1
    assert cost("claude-opus-5-5", input_tokens=1_000_000, output_tokens=100_000,
                service_tier="batch", inference_geo="us") == Decimal("3.3")
    # and both apply on top of a long-context band:
    # Haiku 5.5, 1M input at the higher band's 0.50, × 1.1
    assert cost("claude-haiku-5-5", input_tokens=1_000_000, inference_geo="us") == Decimal("0.55")
    # Sonnet 4.5, 300K input at the long-context 6, × 0.5
    assert cost("claude-sonnet-4-5", input_tokens=300_000, service_tier="batch") == Decimal("0.9")


# ---------------------------------------------------------------- cache writes


def test_cache_creation_without_ttl_split_counts_as_5_minute_writes() -> None:
    assert cost("claude-opus-5-5", cache_creation_input_tokens=1_000_000) == Decimal("5")
    assert Usage(cache_creation_input_tokens=7).writes() == (7, 0)


def test_cache_creation_with_ttl_split_prices_each_part() -> None:
    # 400K·5 + 600K·8 = 2 + 4.8
    assert cost("claude-opus-5-5", cache_creation_input_tokens=1_000_000,
                cache_creation_5m_input_tokens=400_000,
                cache_creation_1h_input_tokens=600_000) == Decimal("6.8")
    # only the 1h part given: all of it is 1h
    assert cost("claude-opus-5-5", cache_creation_input_tokens=1_000_000,
                cache_creation_1h_input_tokens=1_000_000) == Decimal("8")


def test_prompt_tokens_include_cache_reads_and_writes() -> None:
    usage = Usage(input_tokens=1, cache_read_input_tokens=20, cache_creation_input_tokens=300,
                  output_tokens=4000)
    assert usage.prompt_tokens == 321


# ---------------------------------------------------------------- unknowns


@pytest.mark.parametrize("model", ["gpt-9", "claude-sonnet-9-9", "", "Claude-Opus-5-5"])
def test_unknown_model_costs_none_not_zero(model: str, caplog: pytest.LogCaptureFixture) -> None:
    assert cost(model, input_tokens=1000, output_tokens=1000) is None
    assert cost(model) is None  # even with no tokens: unknown, not $0
    assert caplog.messages == [f"no price for model {model!r}: its cost is recorded as "
                               "unknown"] * 2


# ---------------------------------------------------------------- user price file


def test_user_price_file_adds_a_model(tmp_path: Path) -> None:
    user_file = tmp_path / "prices.json"
    user_file.write_text(json.dumps({"models": [
        {"ids": ["acme-llm-1"], "periods": [
            {"from": "2026-01-01", "input": "1.5", "cache_write_5m": None,
             "cache_write_1h": None, "cache_read": "0.15", "output": "7"}]},
        {"ids": ["claude-haiku-4-5"], "periods": [
            {"from": "2000-01-01", "input": "2", "cache_write_5m": "2.5", "cache_write_1h": "4",
             "cache_read": "0.2", "output": "10"}]},
    ]}))
    table = PriceTable.load(user_file)
    # 1M·1.5 + 1M·0.15 + 1M·7
    assert cost("acme-llm-1", table=table, input_tokens=1_000_000,
                cache_read_input_tokens=1_000_000, output_tokens=1_000_000) == Decimal("8.65")
    assert cost("acme-llm-1", table=table, cache_creation_input_tokens=1) is None
    # a user entry replaces a shipped one; other shipped models stay
    assert cost("claude-haiku-4-5", table=table, input_tokens=1_000_000) == Decimal("2")
    assert cost("claude-opus-5-5", table=table, input_tokens=1_000_000) == Decimal("4")
    # the shipped table itself is untouched
    assert not TABLE.knows("acme-llm-1")
    assert cost("claude-haiku-4-5", input_tokens=1_000_000) == Decimal("1")


def test_user_price_file_can_override_multipliers(tmp_path: Path) -> None:
    user_file = tmp_path / "prices.json"
    user_file.write_text(json.dumps({"multipliers": {"batch": "0.4"}}))
    table = PriceTable.load(user_file)
    assert cost("claude-opus-5-5", table=table, input_tokens=1_000_000,
                service_tier="batch") == Decimal("1.6")
    assert cost("claude-opus-5-5", table=table, input_tokens=1_000_000,
                inference_geo="us") == Decimal("4.4")


def test_missing_user_price_file_is_ignored(tmp_path: Path) -> None:
    table = PriceTable.load(tmp_path / "absent.json")
    assert set(table.models) == set(TABLE.models)


def test_price_table_is_cached() -> None:
    assert price_table() is price_table()
    assert price_table().knows("claude-sonnet-5-5")


def test_a_call_before_the_first_price_period_has_an_unknown_cost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    user = tmp_path / "prices.json"
    user.write_text(json.dumps({"models": [{"ids": ["claude-new-1"], "periods": [
        {"from": "2026-03-01", "input": "4", "cache_write_5m": "5", "cache_write_1h": "8",
         "cache_read": "0.4", "output": "20"},
        {"from": "2026-01-01", "input": "3", "cache_write_5m": "3.75", "cache_write_1h": "6",
         "cache_read": "0.3", "output": "15"}]}]}))
    table = PriceTable.load(user)
    million_in = {"input_tokens": 1_000_000}
    assert cost("claude-new-1", on=date(2025, 12, 31), table=table, **million_in) is None
    assert caplog.messages == ["no price for model 'claude-new-1' on 2025-12-31 (its first "
                               "price is from 2026-01-01): its cost is recorded as unknown"]
    # from its first day on, each period's own rates (periods need not be listed in order)
    assert cost("claude-new-1", on=date(2026, 1, 1), table=table, **million_in) == Decimal(3)
    assert cost("claude-new-1", on=date(2026, 2, 28), table=table, **million_in) == Decimal(3)
    assert cost("claude-new-1", on=date(2026, 3, 1), table=table, **million_in) == Decimal(4)
    # no tokens cost nothing, whatever the day
    assert cost("claude-new-1", on=date(2025, 12, 31), table=table) == Decimal(0)
    assert table.rates("claude-new-1", date(2025, 12, 31)) == dict.fromkeys(
        ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output"))
