"""Reading an import file: quoted fields with line breaks, and what a row says about leaving."""

from __future__ import annotations

from datetime import UTC, datetime

from drip.imports import parse_csv
from drip.planner import first_email_of_import
from drip.sequence import load_library
from tests.conftest import FIXTURES


def test_a_quoted_field_with_line_breaks_is_one_field_of_one_row() -> None:
    parsed = parse_csv(
        b'email,name,note\r\n'
        b'ana@example.com,Ana,"Leave it with\r\nthe neighbour,\nplease"\r\n'
        b'not-an-address,Bad,x\r\n'
        b'ben@example.com,"Ben\nBrown",y\r\n')
    assert [(r.line, r.email) for r in parsed.rows] == [(2, "ana@example.com"),
                                                       (6, "ben@example.com")]
    assert [p.line for p in parsed.problems] == [5]  # named by the line the row starts on
    assert parsed.rows[1].name == "Ben Brown"
    assert parsed.lines == 7


def test_leaving_is_read_from_the_state_or_from_a_time_of_leaving() -> None:
    parsed = parse_csv(
        b"email,state,unsubscribed_at,suppressed_at,suppressed_reason\n"
        b"a@example.com,bounced,,,\n"
        b"b@example.com,active,2025-01-02T03:04:05Z,,\n"
        b"c@example.com,suppressed,,2025-01-03T00:00:00Z,\"spam report, twice\"\n"
        b"d@example.com,paused,,,\n"
        b"e@example.com,gone,,,\n")
    states = {r.email: (r.state, r.left_at, r.reason) for r in parsed.rows}
    assert states["a@example.com"] == ("suppressed", None, "bounced before the import")
    assert states["b@example.com"] == ("unsubscribed", datetime(2025, 1, 2, 3, 4, 5,
                                                                tzinfo=UTC), None)
    assert states["c@example.com"] == ("suppressed", datetime(2025, 1, 3, tzinfo=UTC),
                                       "spam report, twice")
    assert states["d@example.com"][0] == "paused"
    assert [str(p) for p in parsed.problems] == [
        "line 6: the state 'gone' is not one of active, subscribed, paused, unsubscribed, "
        "cancelled, canceled, suppressed, bounced, cleaned, complained, cold, inactive, "
        "unconfirmed, pending"]


def test_an_imported_person_gets_week_1_in_the_next_send_slot_of_their_day() -> None:
    sequence = load_library(FIXTURES / "basic" / "sequences").sequence("basic")  # 06:30
    now = datetime(2026, 3, 2, 20, 55, tzinfo=UTC)  # 21:55 in Berlin, 05:55 in Tokyo
    berlin = first_email_of_import(sequence, "Europe/Berlin", now).slot
    tokyo = first_email_of_import(sequence, "Asia/Tokyo", now).slot
    london = first_email_of_import(sequence, "Europe/London", now).slot  # 20:55, still open
    assert berlin.due_at == datetime(2026, 3, 3, 5, 30, tzinfo=UTC)  # 06:30 tomorrow
    assert tokyo.due_at == datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 06:30 today
    assert london.due_at == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # today's slot, open
    assert london.window_end_at == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
