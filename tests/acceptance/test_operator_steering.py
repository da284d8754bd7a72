"""Steering from the terminal: retry, resolve, pause and resume, unsubscribe, suppress."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from drip.runtime import Drip
from drip.store import Outcome
from tests.support.cli import Cli, crash_mid_send, fail_due


def deliveries(cli: Cli, email: str) -> list[tuple[str, str]]:
    return [(r["step_key"], r["state"])
            for r in reversed(cli.json("sends", "--email", email, "--limit", "100"))]


def outbox(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))


def test_retry_sends_a_failed_delivery_once_more(cli: Cli, live: Drip, tmp_path: Path) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [failed] = fail_due(live)
    assert cli.json("retry") == {"retried": [failed], "skipped": []}
    assert deliveries(cli, "ana@example.com") == [("week-1", "scheduled")]
    # a fresh try shows no error of the last one; the timeline's event keeps it
    person = cli.json("subscriber", "ana@example.com")
    assert [d["last_error"] for d in person["deliveries"]] == [None]
    assert [e["detail"] for e in person["events"] if e["kind"] == "retried"] == [
        "by an operator; it had: 550 5.1.1 mailbox unavailable"]
    assert cli.json("retry") == {"retried": [], "skipped": []}  # nothing failed any more
    assert "No failed deliveries to retry." in cli("retry").stdout
    cli("dispatch")
    assert deliveries(cli, "ana@example.com") == [("week-1", "sent"), ("week-2", "scheduled")]
    assert len(outbox(tmp_path)) == 1
    skipped = cli("retry", "--id", str(failed), code=1)
    assert f"Skipped delivery {failed}: it is sent, not failed." in skipped.stdout
    assert "drip resolve" in cli("retry", "--state", "unknown", code=2).stderr
    assert "No delivery has the id 999" in cli("retry", "--id", "999", code=3).stderr


def test_resolve_an_unknown_delivery_as_sent(cli: Cli, live: Drip) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [unknown] = crash_mid_send(live)
    # finds the dead worker's lease expired, says so, and exits 1: a human should look
    reaped = cli("dispatch", code=1).stdout
    assert "1 in-flight send of a stopped worker became unknown" in reaped
    assert cli.json("dispatch", code=0)["expired_leases"] == 0  # said once, not again
    assert deliveries(cli, "ana@example.com") == [("week-1", "unknown"),
                                                  ("week-2", "scheduled")]
    assert cli.json("resolve", str(unknown), "--as", "sent") == {"resolved": [unknown],
                                                                "as": "sent"}
    assert deliveries(cli, "ana@example.com") == [("week-1", "sent"), ("week-2", "scheduled")]
    assert "unknown" not in " ".join(cli.json("status")["problems"])
    again = cli("resolve", str(unknown), "--as", "sent", code=4)
    assert "is sent, not unknown" in again.stderr
    assert "--as sent or --as resend" in cli("resolve", str(unknown), "--as", "maybe",
                                             code=2).stderr


def test_resolve_resend_sends_it_again_and_keeps_the_order(cli: Cli, live: Drip,
                                                          tmp_path: Path) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [unknown] = crash_mid_send(live)
    cli("dispatch", code=1)
    assert outbox(tmp_path) == []  # the dead worker never wrote its file
    said = cli("resolve", str(unknown), "--as", "resend").stdout
    assert "1 delivery goes out again at the next dispatch" in said
    assert deliveries(cli, "ana@example.com") == [("week-1", "scheduled")]
    cli("dispatch")
    assert deliveries(cli, "ana@example.com") == [("week-1", "sent"), ("week-2", "scheduled")]
    assert len(outbox(tmp_path)) == 1
    events = [e["kind"] for e in cli.json("subscriber", "ana@example.com")["events"]]
    assert events == ["resolved"]


def test_resend_is_refused_once_the_next_email_went_out(cli: Cli, live: Drip) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [unknown] = crash_mid_send(live)
    cli("dispatch", code=1)
    cli("dispatch", "--now", "2099-01-01T12:00:00Z")  # week 2 goes out
    refused = cli("resolve", str(unknown), "--as", "resend", code=4)
    assert "has already gone out" in refused.stderr and "--as sent" in refused.stderr
    assert deliveries(cli, "ana@example.com")[0] == ("week-1", "unknown")


def test_resend_is_refused_when_the_next_email_failed(cli: Cli, live: Drip) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [unknown] = crash_mid_send(live)
    cli("dispatch", code=1)
    # week 2's email is refused for good by the provider
    [due] = [r.due_at for r in live.store.deliveries(email="ana@example.com")
             if r.step_key == "week-2"]
    later = due + timedelta(minutes=1)
    [week2] = live.store.claim_due(later, 100, "test-worker", later + timedelta(minutes=5))
    live.store.record_outcomes([Outcome(week2.id, "failed", provider="outbox",
                                        error="550 5.1.1 mailbox unavailable")], later)
    refused = cli("resolve", str(unknown), "--as", "resend", code=4)
    assert f"(delivery {week2.id}) is already failed" in refused.stderr
    assert f"--as sent, then `drip retry --id {week2.id}`" in refused.stderr
    # nothing changed
    assert deliveries(cli, "ana@example.com") == [("week-1", "unknown"), ("week-2", "failed")]
    # what the message says to do works
    cli("resolve", str(unknown), "--as", "sent")
    assert cli.json("retry", "--id", str(week2.id)) == {"retried": [week2.id], "skipped": []}
    assert deliveries(cli, "ana@example.com") == [("week-1", "sent"), ("week-2", "scheduled")]


def test_pause_and_resume_a_subscriber(cli: Cli, tmp_path: Path) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    assert "Paused ana@example.com" in cli("pause", "ANA@example.com").stdout
    cli("dispatch")
    assert [r["email"] for r in cli.json("sends", "--state", "sent")] == ["ben@example.com"]
    assert deliveries(cli, "ana@example.com") == [("week-1", "held")]
    assert "Resumed ana@example.com" in cli("resume", "ana@example.com").stdout
    cli("dispatch")
    assert deliveries(cli, "ana@example.com") == [("week-1", "sent"), ("week-2", "scheduled")]
    assert "was not paused" in cli("resume", "ana@example.com").stdout
    assert "No subscriber has the address" in cli("pause", "zed@example.com", code=3).stderr


def test_pause_and_resume_a_sequence(cli: Cli) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    assert cli("pause", "--sequence", "basic").stdout.strip() == "Paused the sequence basic."
    assert cli.json("status")["paused_sequences"] == ["basic"]
    cli("dispatch")
    assert deliveries(cli, "ana@example.com") == [("week-1", "scheduled")]
    assert "Resumed the sequence basic" in cli("resume", "--sequence", "basic").stdout
    cli("dispatch")
    assert deliveries(cli, "ana@example.com")[0] == ("week-1", "sent")
    assert "no sequence 'nope'" in cli("pause", "--sequence", "nope", code=2).stderr


def test_the_kill_switch_stops_every_dispatch(cli: Cli) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    assert "kill switch is on" in cli("pause", "--all").stdout
    assert "already on" in cli("pause", "--all").stdout
    assert "Sending is paused" in cli("dispatch").stdout
    assert deliveries(cli, "ana@example.com") == [("week-1", "scheduled")]
    assert "kill switch is off" in cli("resume", "--all").stdout
    cli("dispatch")
    assert deliveries(cli, "ana@example.com")[0] == ("week-1", "sent")
    assert "without an email" in cli("pause", "--all", "ana@example.com", code=2).stderr
    assert "Say what" in cli("resume", code=2).stderr


def test_unsubscribe_suppress_and_unsuppress(cli: Cli) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    said = cli("suppress", "ana@example.com", "--reason", "hard bounce").stdout
    assert "Suppressed ana@example.com; 1 enrollment held." in said
    assert "already suppressed" in cli("suppress", "ana@example.com").stdout
    assert "Unsubscribed ben@example.com; 1 pending email cancelled." in cli(
        "unsubscribe", "ben@example.com").stdout
    assert "already unsubscribed" in cli("unsubscribe", "ben@example.com").stdout
    cli("dispatch")
    assert cli.json("sends", "--state", "sent") == []
    assert cli.json("status")["subscribers"] == {"active": 0, "paused": 0,
                                                 "unsubscribed": 1, "suppressed": 1}
    assert "Unsuppressed ana@example.com" in cli("unsuppress", "ana@example.com").stdout
    assert "was not suppressed" in cli("unsuppress", "ana@example.com").stdout
    cli("dispatch")
    assert [r["email"] for r in cli.json("sends", "--state", "sent")] == ["ana@example.com"]
    assert deliveries(cli, "ben@example.com") == [("week-1", "cancelled")]


def test_a_number_too_long_for_the_database_is_bad_input_not_a_traceback(cli: Cli) -> None:
    # One digit too many overflowed the database driver (OverflowError, a traceback).
    huge = str(2**64)
    for args in (("retry", "--id", huge), ("resolve", huge, "--as", "sent"),
                 ("sends", "--limit", huge), ("sends", "--offset", huge)):
        assert "Invalid value" in cli(*args, code=2).output
    assert "No delivery has the id 9223372036854775807" in cli(
        "retry", "--id", str(2**63 - 1), code=3).stderr


def test_a_skipped_retry_says_what_would_let_it_go(cli: Cli, live: Drip) -> None:
    # Every skip said "resume it first", but `drip resume` refuses a suppressed address
    # and does nothing for someone who unsubscribed.
    cli("enroll", "ana@example.com", "--sequence", "basic")
    [failed] = fail_due(live)
    cli("pause", "ana@example.com")
    assert cli.json("retry", code=1)["skipped"] == [
        {"id": failed, "why": "its enrollment is paused; `drip resume` it first"}]
    cli("resume", "ana@example.com")
    cli("suppress", "ana@example.com")
    assert cli.json("retry", code=1)["skipped"] == [
        {"id": failed, "why": "its address is suppressed; `drip unsuppress` it first"}]
    cli("resume", "ana@example.com", code=4)  # what the old advice led to
    cli("unsuppress", "ana@example.com")
    cli("unsubscribe", "ana@example.com")
    said = cli("retry", code=1).stdout
    assert (f"Skipped delivery {failed}: its enrollment is unsubscribed, so nothing of it is "
            "sent again.") in said
