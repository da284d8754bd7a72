"""The sign-up's checks and words, pure: zone guesses, the zone list, every field refused at
once (no silent UTC), the program described from its file, dates in the runner's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drip.addresses import require_timezone, suggest_zone, zone, zones_by_region
from drip.errors import InvalidFields, InvalidTimezone
from drip.optin import check_request
from drip.sequence import load_library
from drip.web.words import local_when, program_facts, zone_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("typed", "meant"), [
    ("London", "Europe/London"), ("los angeles", "America/Los_Angeles"),
    ("Europe/Londn", "Europe/London"), ("sydney", "Australia/Sydney"),
    ("new-york", "America/New_York"), ("europe/london", "Europe/London")])
def test_a_zone_drip_can_guess_is_suggested(typed: str, meant: str) -> None:
    assert suggest_zone(typed) == meant
    with pytest.raises(InvalidTimezone) as refused:
        zone(typed)
    assert refused.value.suggestion == meant and f"Did you mean {meant}?" in str(refused.value)


def test_nonsense_gets_no_guess_and_blank_is_missing() -> None:
    assert suggest_zone("Mars/Base") is None and suggest_zone("   ") is None
    for blank in ("", "  "):
        with pytest.raises(InvalidTimezone, match="timezone is missing"):
            require_timezone(blank)
    assert require_timezone("UTC") == "UTC"


def test_the_zone_list_is_grouped_by_region_and_ends_with_utc() -> None:
    regions = dict(zones_by_region())
    assert "America/Los_Angeles" in regions["America"]
    assert all(name.startswith(f"{region}/") for region, names in regions.items()
               for name in names)
    assert "US/Pacific" not in {n for names in regions.values() for n in names}
    options = zone_options()
    assert options[-1] == ("Other", [("UTC", "UTC (no timezone)")])
    assert ("Europe/London", "Europe/London") in dict(options)["Europe"]
    assert ("America/Los_Angeles", "America/Los Angeles") in dict(options)["America"]


def test_every_refused_field_is_named_at_once() -> None:
    library = load_library(ROOT / "sequences")
    with pytest.raises(InvalidFields) as refused:
        check_request(library, email="nope@", name="x" * 201, timezone="London",
                      sequence_key="pht-7-week")
    problems = refused.value.problems
    assert list(problems) == ["email", "name", "timezone"]
    assert refused.value.suggestions == {"timezone": "Europe/London"}
    assert "plain ASCII" not in problems["email"]  # only said when it is the reason
    with pytest.raises(InvalidFields) as blank:
        check_request(library, email="ana@example.com", name="", timezone="",
                      sequence_key="pht-7-week")
    assert list(blank.value.problems) == ["timezone"]  # never a silent UTC
    ok = check_request(library, email=" Ana@Example.com ", name="Ana", timezone="UTC",
                       sequence_key="pht-7-week")
    assert (ok.email, ok.timezone, ok.sequence_key) == ("ana@example.com", "UTC", "pht-7-week")


def test_the_program_is_described_from_its_file() -> None:
    sequence = load_library(ROOT / "sequences").sequence("pht-7-week")
    first, checkpoints = program_facts(sequence)
    assert first.startswith("7 weekly emails. The first comes as soon as you confirm")
    assert "one a week at 06:30 in the morning, your time" in first
    assert "silence never moves you on" in checkpoints


def test_dates_read_in_the_runners_zone() -> None:
    moment = datetime(2026, 12, 13, 14, 30, tzinfo=UTC)
    assert local_when(moment, "America/Los_Angeles") == "Sunday 13 December at 06:30"
    assert local_when(moment, "Australia/Sydney") == "Monday 14 December at 01:30"
