"""`drip tag add/remove` through the real `drip` process: the tag shows in `drip subscriber`,
a goal on it ends the sequence at the next `drip dispatch`, and bad input changes nothing."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Run
from tests.conftest import FIXTURES

RUNNER = "tam@example.com"


def test_drip_tag_add_ends_the_sequence_at_the_next_dispatch(
        drip_cli: Run, process_env: dict[str, str]) -> None:
    process_env["DRIP_SEQUENCES_DIR"] = str(FIXTURES / "tagged" / "sequences")
    process_env["DRIP_TEMPLATES_DIR"] = str(FIXTURES / "tagged" / "templates")
    drip_cli("db", "upgrade", check=True)
    drip_cli("enroll", RUNNER, "--sequence", "tagged", "--timezone", "Europe/Berlin",
             "--now", "2026-03-02T09:00:00+00:00", check=True)
    drip_cli("dispatch", "--now", "2026-03-02T09:01:00+00:00", check=True)

    # bad input: a clear message, an exit code, nothing changed
    bad = drip_cli("tag", "add", RUNNER, "Clinician Referral!")
    assert bad.returncode == 2 and "is not a tag" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    nobody = drip_cli("tag", "add", "nobody@example.com", "clinician-referral")
    assert nobody.returncode == 3 and "No subscriber has the address" in nobody.stderr

    done = drip_cli("tag", "add", RUNNER.upper(), "clinician-referral", check=True)
    assert f"Tagged {RUNNER} clinician-referral." in done.stdout
    again = drip_cli("tag", "add", RUNNER, "clinician-referral", "--json", check=True)
    assert json.loads(again.stdout) == {"email": RUNNER, "tag": "clinician-referral",
                                        "added": False}
    shown = drip_cli("subscriber", RUNNER, check=True)
    assert "Tags: clinician-referral." in shown.stdout
    assert json.loads(drip_cli("subscriber", RUNNER, "--json", check=True).stdout)[
        "tags"] == ["clinician-referral"]

    drip_cli("dispatch", "--now", "2026-03-09T07:30:00+00:00", check=True)
    timeline = json.loads(drip_cli("subscriber", RUNNER, "--json", check=True).stdout)
    assert [(d["step_key"], d["state"]) for d in timeline["deliveries"]] == [
        ("week-1", "sent"), ("week-2", "cancelled")]
    assert timeline["enrollments"][0]["state"] != "active"

    removed = drip_cli("tag", "remove", RUNNER, "clinician-referral", check=True)
    assert "Removed the tag clinician-referral" in removed.stdout
    assert "Tags: none." in drip_cli("subscriber", RUNNER, check=True).stdout
    gone = drip_cli("tag", "remove", RUNNER, "clinician-referral", check=True)
    assert "does not have the tag" in gone.stdout
