"""`drip sends` and `drip subscriber`: what went out, and one person's whole story."""

from __future__ import annotations

from datetime import timedelta

from drip import checkpoints
from drip.runtime import Drip
from tests.support.cli import Cli, fail_due


def test_sends_lists_newest_first_with_every_filter(cli: Cli, live: Drip) -> None:
    days_ago = (live.clock.now() - timedelta(days=3)).isoformat()
    cli("enroll", "old@example.com", "--sequence", "basic", "--now", days_ago)
    cli("dispatch", "--now", days_ago)
    cli("enroll", "ana@example.com", "--sequence", "basic", "--timezone", "Europe/London")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    cli("dispatch")
    cli("enroll", "cy@example.com", "--sequence", "basic")
    fail_due(live, "550 5.1.1 mailbox unavailable")

    every = cli.json("sends")
    assert len(every) == 7
    assert (every[-1]["email"], every[-1]["step_key"]) == ("old@example.com", "week-1")
    moments = [r["at"] for r in every]
    assert moments == sorted(moments, reverse=True)  # newest first

    failed = cli.json("sends", "--state", "failed")
    assert [(r["email"], r["last_error"]) for r in failed] == [
        ("cy@example.com", "550 5.1.1 mailbox unavailable")]
    sent = cli.json("sends", "--state", "sent", "--since", "1h")
    assert sorted(r["email"] for r in sent) == ["ana@example.com", "ben@example.com"]
    assert all(r["provider_message_id"] and r["nudge"] == "offer-a" for r in sent)
    older = cli.json("sends", "--state", "sent", "--until", "1d")
    assert [r["email"] for r in older] == ["old@example.com"]
    ana = cli.json("sends", "--email", "ANA@example.com")
    assert [(r["step_key"], r["state"]) for r in ana] == [("week-2", "scheduled"),
                                                          ("week-1", "sent")]
    assert ana[1]["local_at"].endswith(("+00:00", "+01:00"))  # London time
    assert len(cli.json("sends", "--step", "week-2", "--sequence", "basic")) == 3
    assert "no sequence 'other'" in cli("sends", "--sequence", "other", code=2).output
    assert len(cli.json("sends", "--limit", "2")) == 2
    pages = [cli.json("sends", "--limit", "3", "--offset", str(n)) for n in (0, 3, 6)]
    assert [r["id"] for page in pages for r in page] == [r["id"] for r in every]
    assert "--offset must be 0 or more" in cli("sends", "--offset", "-1", code=2).stderr

    screen = cli("sends", "--state", "failed").stdout
    assert "cy@example.com" in screen and "550 5.1.1 mailbox unavailable" in screen
    assert "ana@example.com" not in screen
    assert "No deliveries match." in cli("sends", "--email", "nobody@example.com").stdout
    limited = cli("sends", "--limit", "1").stdout
    assert "There may be more: --offset 1 shows the next page." in limited
    assert "(2-2 shown)" in cli("sends", "--limit", "1", "--offset", "1").stdout


def test_sends_refuses_what_it_cannot_understand(cli: Cli) -> None:
    assert "not a delivery state" in cli("sends", "--state", "lost", code=2).stderr
    assert "ISO 8601" in cli("sends", "--since", "last tuesday", code=2).stderr
    assert "not a valid email address" in cli("sends", "--email", "nope", code=2).stderr


def test_subscriber_shows_the_whole_timeline(cli: Cli, live: Drip) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic", "--name", "Ana Lopez",
        "--timezone", "America/Los_Angeles", "--source", "optin")
    cli("dispatch")
    first = cli.json("sends", "--email", "ana@example.com", "--state", "sent")[0]
    checkpoints.answer(live.store, live.library, first["id"], "passed", live.clock.now())
    subscriber_id = live.store.subscriber_id("ana@example.com")
    live.store.record_purchase(source="shop", order_id="A-1", subscriber_id=subscriber_id,
                               product="offer-a", now=live.clock.now())
    cli("suppress", "ana@example.com", "--reason", "bounced: mailbox full")

    data = cli.json("subscriber", "Ana@Example.com")
    assert data["subscriber"]["email"] == "ana@example.com"
    assert data["subscriber"]["state"] == "suppressed"
    assert data["subscriber"]["suppressed_reason"] == "bounced: mailbox full"
    assert [(c["source"], c["sequence_key"]) for c in data["consents"]] == [("optin", "basic")]
    assert [(e["sequence_key"], e["state"]) for e in data["enrollments"]] == [
        ("basic", "suppressed")]
    assert [(d["step_key"], d["state"], d["nudge"]) for d in data["deliveries"]] == [
        ("week-1", "sent", "offer-a"), ("week-2", "held", None)]
    sent = data["deliveries"][0]
    assert sent["provider_message_id"] and sent["variant"] == "main"
    assert sent["local_at"][-6:] in ("-08:00", "-07:00")  # Los Angeles
    assert [e["kind"] for e in data["events"]] == ["suppressed"]
    assert [(a["step_key"], a["answer"]) for a in data["checkpoint_answers"]] == [
        ("week-1", "passed")]
    assert [(p["product"], p["order_id"]) for p in data["purchases"]] == [("offer-a", "A-1")]

    screen = cli("subscriber", "ana@example.com").stdout
    for text in ("ana@example.com Ana Lopez (America/Los_Angeles), suppressed",
                 "bounced: mailbox full", "Consents", "optin", "Enrollments", "Deliveries",
                 "week-1", "offer-a", "held", "Events", "Checkpoint answers", "passed",
                 "Purchases", "A-1"):
        assert text in screen, text
    missing = cli("subscriber", "nobody@example.com", code=3)
    assert missing.stderr.strip() == "Error: No subscriber has the address nobody@example.com."


def test_stored_text_with_square_brackets_is_printed_as_it_is(cli: Cli, live: Drip) -> None:
    # A provider's error, a name from a shop's export and an operator's reason are data:
    # Rich must not read '[/policy]' as a closing tag (it raised MarkupError: a traceback).
    cli("enroll", "ana@example.com", "--sequence", "basic", "--name", "Ana [/b] Lopez")
    fail_due(live, "550 rejected [/policy] by [bold]mx[/bold]")
    now = live.clock.now()
    live.store.open_circuit("outbox", "401 [/auth] bad key", now, now + timedelta(minutes=1))
    cli("pause", "--all", "--reason", "wrong [/link] in week 3")

    listed = cli("sends").stdout
    assert "550 rejected [/policy] by [bold]mx[/bold]" in listed
    person = cli("subscriber", "ana@example.com").stdout
    assert "Ana [/b] Lopez" in person and "[/policy]" in person
    screen = cli("status").stdout
    assert "(wrong [/link] in week 3)" in screen and "401 [/auth] bad key" in screen
    assert "401 [/auth] bad key" in cli("circuit", "show").stdout


def test_an_age_too_long_for_the_calendar_is_bad_input_not_a_traceback(cli: Cli) -> None:
    for age in ("999999w", "99999999999w"):  # OverflowError escaped as a traceback
        error = cli("sends", "--since", age, code=2).stderr
        assert f"'{age}' reaches back before the year 1" in error
    assert cli.json("sends", "--since", "9999w") == []  # 190 years is still an age


def test_subscriber_json_shows_the_whole_consent_record(cli: Cli, live: Drip) -> None:
    from drip.store import ConsentRecord
    from drip.subscriptions import enroll

    wording = "Yes, email me the 7-week program and the coach's offers."
    enroll(live.store, live.library, email="ana@example.com", sequence_key="basic",
           now=live.clock.now(), source="optin", consent=ConsentRecord(
               source="optin", text_version="2026-01", ip="203.0.113.9",
               user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)",
               confirmed_at=live.clock.now(), details={"consent_text": wording}))
    [consent] = cli.json("subscriber", "ana@example.com")["consents"]
    assert consent["user_agent"] == "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"
    assert consent["ip"] == "203.0.113.9" and consent["text_version"] == "2026-01"
    assert consent["details"]["consent_text"] == wording
    assert isinstance(consent["id"], int) and consent["confirmed_at"]
    shown = " ".join(cli("subscriber", "ana@example.com").stdout.split())
    assert "iPhone" in shown  # the table shows it too


def test_an_unknown_sequence_is_bad_input_with_a_suggestion(cli: Cli) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    typo = cli("sends", "--sequence", "basci", code=2)
    assert "There is no sequence 'basci'; did you mean basic?" in " ".join(typo.output.split())
    assert len(cli.json("sends", "--sequence", "basic")) == 1
