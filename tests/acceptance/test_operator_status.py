"""`drip status`: counts, health, the kill switch, and `--check` for cron and monitoring."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console

from drip.cli.status import render
from drip.operations import status
from drip.runtime import Drip
from tests.support.cli import Cli, crash_mid_send, fail_due


def beat(drip: Drip, ago: timedelta) -> None:
    now = drip.clock.now()
    drip.store.beat("host:1:abcd", now - ago, now - timedelta(days=1), "sent 0 failed 0")


def test_status_counts_what_went_out_and_what_is_due(cli: Cli, live: Drip) -> None:
    for email in ("ana@example.com", "ben@example.com", "cy@example.com"):
        cli("enroll", email, "--sequence", "basic")
    cli("dispatch")
    cli("pause", "cy@example.com")
    cli("enroll", "dee@example.com", "--sequence", "basic")
    cli("unsubscribe", "ben@example.com")
    beat(live, timedelta(seconds=5))

    data = cli.json("status")
    assert data["deliveries"]["sent"] == {"now": 3, "last_hour": 3, "last_day": 3,
                                          "last_week": 3}
    assert data["deliveries"]["scheduled"]["now"] == 2  # ana's week 2, dee's week 1
    assert data["deliveries"]["held"]["now"] == 1  # cy's week 2
    assert data["deliveries"]["cancelled"]["now"] == 1  # ben's week 2
    assert data["due"]["now"] == 1  # dee's week 1
    assert data["subscribers"] == {"active": 2, "paused": 1, "unsubscribed": 1,
                                   "suppressed": 0}
    assert data["scheduler"]["alive"] is True and data["scheduler"]["worker"] == "host:1:abcd"
    assert data["kill_switch"]["on"] is False
    assert data["problems"] == [] and data["ok"] is True

    screen = cli("status").stdout
    assert "Deliveries" in screen and "due now" in screen
    assert "Subscribers: 2 active, 1 paused, 1 unsubscribed, 0 suppressed." in screen
    assert "The scheduler is alive" in screen and "Nothing needs a human." in screen
    assert "KILL SWITCH" not in screen


def test_check_fails_on_a_stale_heartbeat_and_passes_on_a_fresh_one(cli: Cli,
                                                                    live: Drip) -> None:
    never = cli("status", "--check", code=1)
    assert "No scheduler has ever ticked" in never.stdout
    beat(live, timedelta(minutes=10))
    stale = cli("status", "--check", code=1)
    assert "The scheduler looks dead: its last tick was 10 min ago" in stale.stdout
    data = cli.json("status", "--check", code=1)
    assert data["scheduler"]["alive"] is False and len(data["problems"]) == 1
    # a shorter tick makes the same heartbeat count as stale sooner, a longer one later
    cli("status", "--check", "--stale-after", "900", code=0)
    beat(live, timedelta(seconds=1))
    fresh = cli("status", "--check", code=0)
    assert "Nothing needs a human." in fresh.stdout


def test_check_names_failed_and_unknown_deliveries_lag_and_an_open_circuit(
        cli: Cli, live: Drip) -> None:
    beat(live, timedelta(seconds=1))
    cli("enroll", "ana@example.com", "--sequence", "basic")
    fail_due(live)
    cli("enroll", "ben@example.com", "--sequence", "basic")
    crash_mid_send(live)
    cli("dispatch", code=1)  # the dead worker's lease expired: ben's email is unknown
    an_hour_ago = (live.clock.now() - timedelta(hours=1)).isoformat()
    cli("enroll", "cy@example.com", "--sequence", "basic", "--now", an_hour_ago)
    now = live.clock.now()
    live.store.open_circuit("outbox", "401 bad API key", now, now + timedelta(minutes=1))

    result = cli("status", "--check", code=1)
    problems = cli.json("status", "--check", code=1)["problems"]
    assert len(problems) == 4
    assert problems[0].startswith("Dispatch lag is 60 min")
    assert problems[1].startswith("1 delivery failed in the last 24 h")
    assert problems[2].startswith("1 delivery is unknown")
    assert problems[3].startswith("The outbox circuit is open: 401 bad API key")
    assert "Needs a human:" in result.stdout and "drip resolve" in result.stdout
    assert cli("status", "--check", "--max-lag", "7200", code=1).stdout.count("  - ") == 3


def test_the_kill_switch_shows_in_red(cli: Cli, live: Drip) -> None:
    cli("pause", "--all", "--reason", "a template went wrong")
    data = cli.json("status")
    assert data["kill_switch"]["on"] is True
    assert data["kill_switch"]["reason"] == "a template went wrong"
    assert "KILL SWITCH ON" in cli("status").stdout
    terminal = Console(force_terminal=True, color_system="standard", width=120)
    with terminal.capture() as captured:
        terminal.print(render(status(live.store, live.clock.now(),
                                     stale_after=timedelta(minutes=3),
                                     max_lag=timedelta(minutes=15))))
    red_line = next(line for line in captured.get().splitlines() if "KILL SWITCH" in line)
    assert "\x1b[1;37;41m" in red_line  # bold white on red
    cli("resume", "--all")
    assert cli.json("status")["kill_switch"]["on"] is False


def test_watch_refreshes_until_stopped(cli: Cli) -> None:
    result = cli("status", "--watch", "--interval", "0", "--refreshes", "2")
    assert "Deliveries" in result.stdout


def test_negative_seconds_are_bad_input_not_a_traceback(cli: Cli) -> None:
    # --watch --interval -1 died in time.sleep with ValueError and a traceback.
    for option in ("--interval", "--max-lag", "--stale-after"):
        result = cli("status", "--watch", "--refreshes", "1", option, "-1", code=2)
        assert f"Invalid value for '{option}'" in result.output


def test_a_sequence_paused_on_purpose_is_not_lag_but_the_kill_switch_is(cli: Cli,
                                                                       live: Drip) -> None:
    beat(live, timedelta(seconds=1))
    an_hour_ago = (live.clock.now() - timedelta(hours=1)).isoformat()
    cli("enroll", "ana@example.com", "--sequence", "basic", "--now", an_hour_ago)
    assert cli.json("status")["scheduler"]["lag_seconds"] >= 3600
    cli("pause", "--sequence", "basic")
    data = cli.json("status", "--check")
    assert data["scheduler"]["lag_seconds"] is None and data["paused_sequences"] == ["basic"]
    cli("resume", "--sequence", "basic")  # moves ana's email later by the pause: no lag
    cli("pause", "--all")
    cli("enroll", "ben@example.com", "--sequence", "basic", "--now", an_hour_ago)
    problems = cli.json("status", "--check", code=1)["problems"]
    assert [p for p in problems if p.startswith("Dispatch lag is")]


def test_check_fails_while_the_kill_switch_is_on(cli: Cli, live: Drip) -> None:
    beat(live, timedelta(seconds=1))
    assert cli.json("status", "--check")["problems"] == []
    cli("pause", "--all", "--reason", "the week-3 video link is broken")
    result = cli("status", "--check", code=1)
    assert ("Sending is paused by the kill switch since" in result.stdout
            and "(the week-3 video link is broken)" in result.stdout)
    assert "drip resume --all" in result.stdout
    cli("resume", "--all")
    assert cli.json("status", "--check")["problems"] == []


def test_status_names_a_scheduler_that_went_silent_among_live_ones(cli: Cli,
                                                                   live: Drip) -> None:
    """With several schedulers, a killed one is named even while the others keep the
    newest heartbeat fresh; one that stopped cleanly, or went quiet over a day ago, is not
    a problem."""
    now = live.clock.now()
    started = now - timedelta(days=2)
    live.store.beat("a:1:aaaa", now - timedelta(seconds=2), started, "sent 10 failed 0")
    live.store.beat("b:2:bbbb", now - timedelta(seconds=5), started, "sent 12 failed 0")
    live.store.beat("c:3:cccc", now - timedelta(minutes=20), started, "stopped cleanly")
    live.store.beat("d:4:dddd", now - timedelta(minutes=30), started, "sent 9 failed 0")
    live.store.beat("e:5:eeee", now - timedelta(days=3), started, "sent 1 failed 0")
    data = cli.json("status", "--check", code=1)
    workers = {w["worker"]: w["state"] for w in data["scheduler"]["workers"]}
    assert workers == {"a:1:aaaa": "alive", "b:2:bbbb": "alive", "c:3:cccc": "stopped",
                       "d:4:dddd": "silent"}
    assert data["scheduler"]["alive"] is True
    assert len(data["problems"]) == 1
    assert data["problems"][0].startswith("The scheduler d:4:dddd went silent 30 min ago")
    screen = cli("status").stdout
    assert "2 schedulers are alive" in screen
    assert "d:4:dddd" in screen and "silent" in screen
    # a day after it went silent it is history, not news: all is well again
    live.store.beat("d:4:dddd", live.clock.now() - timedelta(days=1, minutes=1), started,
                    "sent 9 failed 0")
    live.store.beat("a:1:aaaa", live.clock.now(), started, "sent 0 failed 0")
    assert cli.json("status", "--check", code=0)["problems"] == []


def test_dispatch_json_stays_json_when_an_open_circuit_halts_sending(cli: Cli,
                                                                      live: Drip) -> None:
    # The human "Sending halted: ..." line was printed after the JSON, on standard output.
    cli("enroll", "ana@example.com", "--sequence", "basic")
    now = live.clock.now()
    live.store.open_circuit("outbox", "401 [/auth] bad API key", now, now + timedelta(hours=1))
    report = cli.json("dispatch", code=6)
    assert report["sent_count"] == 0 and report["circuit_open"] is True
    assert report["halted"].endswith("401 [/auth] bad API key")
    halted = cli("dispatch", code=6)
    assert "Sending halted: The outbox circuit is open" in halted.stdout
    assert "401 [/auth] bad API key" in halted.stdout


def test_a_dispatch_with_now_in_the_future_leaves_housekeeping_to_the_next_pass(
        cli: Cli, live: Drip) -> None:
    # `drip dispatch --now 2099-...` took the reaper lease until 2099 and kept it: no pass
    # on the real clock turned a dead worker's sends unknown (or moved missed windows)
    # until then. A one-shot dispatch gives the lease back when its pass is done.
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("dispatch", "--now", "2099-01-01T07:00:00Z")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    [ben] = crash_mid_send(live)
    cli("dispatch", code=1)
    states = {r["id"]: r["state"] for r in cli.json("sends", "--email", "ben@example.com")}
    assert states[ben] == "unknown"
