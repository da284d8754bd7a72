"""The `drip` command as a user runs it: upgrade, enroll, dispatch, with real exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from drip.db import head_revision
from tests.acceptance.conftest import Run


def test_enroll_and_dispatch(drip_cli: Run, tmp_path: Path) -> None:
    upgraded = drip_cli("db", "upgrade", check=True)
    assert "already at the newest migration" in upgraded.stdout  # the fixture migrated it
    enrolled = drip_cli("enroll", "Ana@Example.com", "--sequence", "basic", "--name", "Ana",
                        "--timezone", "Europe/London", "--source", "optin", check=True)
    assert "Enrolled" in enrolled.stdout
    again = drip_cli("enroll", "ana@example.com", "--sequence", "basic", check=True)
    assert "already enrolled" in again.stdout and "nothing changed" in again.stdout
    sent = drip_cli("dispatch", "--json", check=True)
    report = json.loads(sent.stdout)
    assert [(s["email"], s["step"]) for s in report["sent"]] == [("ana@example.com", "week-1")]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    later = drip_cli("dispatch", "--now", "2099-01-01T07:00:00Z", check=True)
    assert "Sent 1" in later.stdout and "week-2" in later.stdout


def test_bad_input_is_one_clear_sentence_and_a_meaningful_exit_code(drip_cli: Run) -> None:
    bad_address = drip_cli("enroll", "not-an-address", "--sequence", "basic")
    assert bad_address.returncode == 2
    assert "not a valid email address" in bad_address.stderr
    assert "Traceback" not in bad_address.stderr + bad_address.stdout
    bad_zone = drip_cli("enroll", "ana@example.com", "--sequence", "basic",
                        "--timezone", "Europe/Lodnon")
    assert bad_zone.returncode == 2 and "Did you mean Europe/London?" in bad_zone.stderr
    bad_sequence = drip_cli("enroll", "ana@example.com", "--sequence", "nope")
    assert bad_sequence.returncode == 2 and "no sequence 'nope'" in bad_sequence.stderr
    bad_now = drip_cli("dispatch", "--now", "yesterday")
    assert bad_now.returncode == 2 and "ISO 8601" in bad_now.stderr
    nothing = drip_cli("dispatch", "--json", check=True)
    assert json.loads(nothing.stdout)["sent"] == []


def test_a_database_behind_the_code_is_refused_until_upgraded(
        drip_cli: Run, process_env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    head = head_revision()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    try:
        behind = drip_cli("dispatch", "--json")
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"),
                               {"head": head})
        engine.dispose()
    assert behind.returncode == 5, behind.stdout + behind.stderr
    assert (f"The database is at migration 0002 but drip needs {head}; run `drip db upgrade`."
            in " ".join(behind.stderr.split()))
    never = tmp_path / "never-migrated.db"
    process_env["DRIP_DATABASE_URL"] = f"sqlite:///{never}"
    empty = drip_cli("dispatch", "--json")
    assert empty.returncode == 5, empty.stderr
    assert (f"There is no SQLite database at {never}; create it with `drip db upgrade`"
            in " ".join(empty.stderr.split()))
    drip_cli("db", "upgrade", check=True)
    assert json.loads(drip_cli("dispatch", "--json", check=True).stdout)["sent"] == []


def test_an_unsubscribe_is_not_undone_by_enrolling_with_another_source(drip_cli: Run) -> None:
    # Only the person can take back an unsubscribe, by confirming an opt-in or buying
    # (both leave evidence in the consent record). `--source optin` or `purchase` typed by
    # an operator is a claim without evidence, so it is refused like `manual`.
    drip_cli("enroll", "ana@example.com", "--sequence", "basic", check=True)
    drip_cli("unsubscribe", "ana@example.com", check=True)
    for source in ("manual", "optin", "purchase"):
        refused = drip_cli("enroll", "ana@example.com", "--sequence", "basic",
                           "--source", source)
        assert refused.returncode == 4, (source, refused.stdout, refused.stderr)
        assert "unsubscribed" in refused.stderr and "opt in or buy again" in refused.stderr
    shown = json.loads(drip_cli("subscriber", "ana@example.com", "--json", check=True).stdout)
    assert shown["subscriber"]["state"] == "unsubscribed"


def test_a_missing_sqlite_database_is_refused_not_created(drip_cli: Run,
                                                          process_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "drip.db"
    process_env["DRIP_DATABASE_URL"] = f"sqlite:///{missing}"
    for command in (("status",), ("status", "--check"), ("sends",)):
        refused = drip_cli(*command)
        assert refused.returncode == 5, refused.stdout + refused.stderr
        said = " ".join(refused.stderr.split())
        assert f"There is no SQLite database at {missing} (nor the folder" in said
        assert "drip db upgrade" in said
    assert not missing.parent.exists()  # neither the file nor its folder was made
    drip_cli("db", "upgrade", check=True)
    assert missing.exists()
    drip_cli("status", check=True)
