"""`drip import` and `drip export`: every row checked first, all or nothing, safe to re-run."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from drip.models import Consent, Enrollment
from tests.conftest import FIXTURES, ROOT
from tests.support.cli import Cli, cli_env

GOOD = (
    "Email,Name,Timezone,Joined_At,Source,Order Total\n"
    "ana@example.com,Ana Lopez,Europe/London,2026-02-01T09:30:00Z,shop,49.00\n"
    "ben@example.com,Ben,America/New_York,2026-02-03,shop,49.00\n"
    "ANA@example.com,,,,,49.00\n"  # the same person again: merged
    "\n"
    "cy@example.com,Cy,,,,0\n"
)

BAD = (
    b"email,name,timezone\n"
    b"ana@example.com,Ana,Europe/London\n"
    b"not-an-address,Bad,UTC\n"
    b"ben@example.com,Ben,Mars/Olympus_Mons\n"
    b"cy@example.com,Cy\n"
    b"dee@example.com,Dee,Europe/Paris\n"
    b"DEE@example.com,Dee,Asia/Tokyo\n"
) + b"\xff\xfeeve@example.com,Eve,UTC\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return str(path)


def test_import_enrolls_everyone_records_consent_and_is_idempotent(cli: Cli,
                                                                   tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", GOOD)
    dry = cli.json("import", path, "--sequence", "basic", "--dry-run")
    assert (dry["enrolled"], dry["new_subscribers"], dry["rows"]) == (3, 3, 3)
    assert dry["merged"] == [{"line": 4, "note": "ana@example.com repeats line 2; merged"}]
    assert dry["ignored_columns"] == ["order total"]
    assert json.loads(cli("export", "subscribers", "--format", "json").stdout) == []

    said = cli("import", path, "--sequence", "basic").stdout
    assert "Enrolled 3 of 3 people in basic (3 new subscribers)" in said
    assert "Merged line 4: ana@example.com repeats line 2; merged." in said
    ana = cli.json("subscriber", "ana@example.com")
    assert (ana["subscriber"]["name"], ana["subscriber"]["timezone"]) == ("Ana Lopez",
                                                                          "Europe/London")
    [consent] = ana["consents"]
    assert consent["source"] == "import" and consent["sequence_key"] == "basic"
    assert consent["created_at"].startswith("2026-02-01T09:30:00")  # when they bought
    assert consent["details"]["source"] == "shop" and consent["details"]["line"] == 2
    assert consent["details"]["file"] == "orders.csv"
    assert [(e["source"], e["state"]) for e in ana["enrollments"]] == [("import", "active")]
    assert [(d["step_key"], d["state"]) for d in ana["deliveries"]] == [("week-1",
                                                                         "scheduled")]
    assert cli.json("subscriber", "cy@example.com")["subscriber"]["timezone"] == "UTC"

    again = cli.json("import", path, "--sequence", "basic")
    assert (again["enrolled"], again["already_enrolled"], again["new_subscribers"]) == (0, 3, 0)
    assert len(cli.json("subscriber", "ana@example.com")["consents"]) == 1
    assert len(cli.json("sends")) == 3
    due = {s["email"] for s in cli.json("sends")
           if datetime.fromisoformat(s["due_at"]) <= datetime.now(UTC)}
    cli("dispatch")
    assert {s["email"] for s in cli.json("sends", "--state", "sent")} == due


def test_import_leaves_unsubscribed_and_suppressed_people_alone(tmp_path: Path,
                                                               database_url: str) -> None:
    sequences = tmp_path / "sequences"
    shutil.copytree(FIXTURES / "basic" / "sequences", sequences)
    basic = (sequences / "basic.yaml").read_text()
    (sequences / "second.yaml").write_text(basic.replace("key: basic", "key: second", 1))
    cli = Cli(cli_env(tmp_path, database_url, DRIP_SEQUENCES_DIR=str(sequences)))
    cli("enroll", "ana@example.com", "--sequence", "basic")
    cli("unsubscribe", "ana@example.com")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    cli("suppress", "ben@example.com")
    path = write(tmp_path, "people.csv",
                 "email\nana@example.com\nben@example.com\ncy@example.com\n")
    result = cli.json("import", path, "--sequence", "second")
    assert (result["enrolled"], result["unsubscribed"], result["suppressed"]) == (1, 1, 1)
    assert [e["sequence_key"] for e in cli.json("subscriber", "ana@example.com")[
        "enrollments"]] == ["basic"]


def test_a_file_with_bad_rows_reports_each_one_and_changes_nothing(cli: Cli,
                                                                   tmp_path: Path) -> None:
    cli("enroll", "zed@example.com", "--sequence", "basic")
    before = cli("export", "subscribers").stdout, cli("export", "deliveries").stdout
    path = write(tmp_path, "bad.csv", BAD)
    for extra in ((), ("--dry-run",)):
        result = cli("import", path, "--sequence", "basic", *extra, code=2)
        error = result.stderr
        assert "5 invalid rows, so nothing was imported" in error
        assert "line 3: 'not-an-address' is not a valid email address" in error
        assert "line 4: 'Mars/Olympus_Mons' is not an IANA timezone" in error
        assert "line 5: 2 columns, but the header has 3" in error
        assert ("line 7: dee@example.com is also on line 6, with a different timezone "
                "(Asia/Tokyo, not Europe/Paris)") in error
        assert "line 8: not UTF-8" in error
        assert "Traceback" not in result.output
    listed = cli.json("import", path, "--sequence", "basic", code=2)
    assert listed["imported"] is False
    assert [p["line"] for p in listed["invalid"]] == [3, 4, 5, 7, 8]
    assert (cli("export", "subscribers").stdout, cli("export", "deliveries").stdout) == before

    skipped = cli.json("import", path, "--sequence", "basic", "--skip-invalid")
    assert [p["line"] for p in skipped["invalid"]] == [3, 4, 5, 7, 8]
    assert skipped["enrolled"] == 2  # ana, and dee with the first timezone given
    assert cli.json("subscriber", "dee@example.com")["subscriber"]["timezone"] == "Europe/Paris"


def test_import_refuses_what_it_cannot_read(cli: Cli, tmp_path: Path) -> None:
    assert "Cannot read" in cli("import", str(tmp_path / "missing.csv"), "--sequence", "basic",
                                code=2).stderr
    no_email = write(tmp_path, "no-email.csv", "name,timezone\nAna,UTC\n")
    assert "no 'email' column" in cli("import", no_email, "--sequence", "basic",
                                      code=2).stderr
    assert "file is empty" in cli("import", write(tmp_path, "empty.csv", ""), "--sequence",
                                  "basic", code=2).stderr
    good = write(tmp_path, "good.csv", "email\nana@example.com\n")
    assert "no sequence 'nope'" in cli("import", good, "--sequence", "nope", code=2).stderr


def test_export_subscribers_and_deliveries_as_csv_and_json(cli: Cli, tmp_path: Path) -> None:
    cli("enroll", "ana@example.com", "--sequence", "basic", "--name", "Ana",
        "--timezone", "Europe/London")
    cli("enroll", "ben@example.com", "--sequence", "basic")
    cli("dispatch")
    cli("pause", "ben@example.com")

    rows = list(csv.DictReader(io.StringIO(cli("export", "subscribers").stdout)))
    assert [(r["email"], r["name"], r["timezone"], r["state"], r["sequences"])
            for r in rows] == [("ana@example.com", "Ana", "Europe/London", "active", "basic"),
                               ("ben@example.com", "", "UTC", "paused", "basic")]
    people = json.loads(cli("export", "subscribers", "--format", "json").stdout)
    assert [p["sequences"] for p in people] == [["basic"], ["basic"]]

    out = tmp_path / "deliveries.json"
    said = cli("export", "deliveries", "--format", "json", "--out", str(out)).stdout
    assert f"Wrote 4 deliveries to {out}." in said
    exported = json.loads(out.read_text())
    assert sorted((d["email"], d["step_key"], d["state"]) for d in exported) == [
        ("ana@example.com", "week-1", "sent"), ("ana@example.com", "week-2", "scheduled"),
        ("ben@example.com", "week-1", "sent"), ("ben@example.com", "week-2", "held")]
    table = list(csv.DictReader(io.StringIO(cli("export", "deliveries").stdout)))
    assert {r["state"] for r in table} == {"sent", "scheduled", "held"}
    assert all(r["provider_message_id"] for r in table if r["state"] == "sent")
    assert "use csv or json" in cli("export", "deliveries", "--format", "xml", code=2).stderr
    assert "cannot be exported" in cli("export", "offers", code=2).stderr


def test_a_duplicate_written_as_utc_clashes_with_another_timezone(cli: Cli,
                                                                   tmp_path: Path) -> None:
    # UTC written out is a timezone, not a blank for the later row to fill in: two rows
    # that disagree are an invalid row (docs/operators.md), either way round.
    path = write(tmp_path, "utc.csv", "email,timezone\n"
                                      "kim@example.com,UTC\n"
                                      "KIM@example.com,Asia/Tokyo\n"
                                      "lee@example.com,Asia/Seoul\n"
                                      "lee@example.com,UTC\n"
                                      "max@example.com,\n"
                                      "max@example.com,Europe/Oslo\n")
    refused = cli.json("import", path, "--sequence", "basic", code=2)
    assert refused["invalid"] == [
        {"line": 3, "problem": "kim@example.com is also on line 2, with a different "
                               "timezone (Asia/Tokyo, not UTC)"},
        {"line": 5, "problem": "lee@example.com is also on line 4, with a different "
                               "timezone (UTC, not Asia/Seoul)"}]
    assert json.loads(cli("export", "subscribers", "--format", "json").stdout) == []
    cli("import", path, "--sequence", "basic", "--skip-invalid")
    zones = {r["email"]: r["timezone"] for r in json.loads(
        cli("export", "subscribers", "--format", "json").stdout)}
    assert zones == {"kim@example.com": "UTC", "lee@example.com": "Asia/Seoul",
                     "max@example.com": "Europe/Oslo"}  # a blank is still filled in


def test_a_header_naming_a_column_twice_is_refused(cli: Cli, tmp_path: Path) -> None:
    # Which 'email' counts would be a guess (the last one silently won): refuse, change nothing.
    path = write(tmp_path, "two.csv", "Email,Name,EMAIL\nana@example.com,Ana,ben@example.com\n")
    error = cli("import", path, "--sequence", "basic", code=2).stderr
    assert "column 'email' more than once (columns 1 and 3)" in error
    assert json.loads(cli("export", "subscribers", "--format", "json").stdout) == []


def test_exported_deliveries_have_the_fields_of_drip_sends(cli: Cli) -> None:
    # docs/operators.md: "Deliveries have the same fields as `drip sends --json`"; the
    # export left out `at` and `local_at` (when, in UTC and in the subscriber's time).
    cli("enroll", "ana@example.com", "--sequence", "basic", "--timezone", "Europe/London")
    cli("enroll", "ben@example.com", "--sequence", "basic", "--timezone", "Asia/Tokyo")
    cli("dispatch")
    listed = cli.json("sends")
    assert json.loads(cli("export", "deliveries", "--format", "json").stdout) == listed
    [header, *_] = cli("export", "deliveries").stdout.splitlines()
    assert header.split(",") == list(listed[0])


def test_what_the_file_says_is_printed_as_written(cli: Cli, tmp_path: Path) -> None:
    # A bad address or a column name with '[/x]' in it is quoted back to the operator;
    # Rich read it as a closing tag and the import died with a MarkupError traceback.
    path = write(tmp_path, "notes.csv", "email,[/notes]\n[/x]@example,a\nana@example.com,b\n")
    said = cli("import", path, "--sequence", "basic", "--skip-invalid").stdout
    assert "Skipped line 2: '[/x]@example' is not a valid email address" in said
    assert "Ignored the columns [/notes]." in said
    assert "Enrolled 1 of 1 people in basic" in said
    out = tmp_path / "[bold]all.csv"  # was printed as a bold "all.csv"
    assert f"Wrote 1 subscribers to {out}." in cli("export", "subscribers", "--out",
                                                    str(out)).stdout


def test_a_file_not_in_utf8_or_not_comma_separated_is_named_for_what_it_is(
        cli: Cli, tmp_path: Path) -> None:
    # Each of these has an email column; drip said "The header row has no 'email' column".
    utf16 = write(tmp_path, "utf16.csv", "email,name\nvera@example.com,Véra\n"
                  .encode("utf-16"))
    assert "The header row (line 1) is not UTF-8; save the file as UTF-8" in cli(
        "import", utf16, "--sequence", "basic", code=2).stderr
    for separator, called in ((";", "semicolons"), ("\t", "tabs")):
        path = write(tmp_path, f"{called}.csv", separator.join(("Email", "Name")) + "\n"
                     + separator.join(("vera@example.com", "Vera")) + "\n")
        error = cli("import", path, "--sequence", "basic", code=2).stderr
        assert f"The header row is separated by {called}, not commas" in error
    assert json.loads(cli("export", "subscribers", "--format", "json").stdout) == []


def test_two_imports_of_the_same_people_at_once_enroll_each_person_once(
        cli: Cli, tmp_path: Path) -> None:
    # Two operators (or a cron job and an operator) import overlapping files at the same
    # moment: both finish, and nobody is enrolled, consented or planned twice.
    rows = "".join(f"runner{i}@example.com,Runner {i},Europe/London\n" for i in range(3000))
    path = write(tmp_path, "people.csv", "email,name,timezone\n" + rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")} | cli.env
    runs = [subprocess.Popen([sys.executable, "-m", "drip", "import", path, "--sequence",
                              "basic", "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    answers = [run.communicate(timeout=120) for run in runs]
    for run, (_, err) in zip(runs, answers, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err, err
    results = [json.loads(out) for out, _ in answers]
    assert sum(r["enrolled"] for r in results) == 3000
    assert sum(r["enrolled"] + r["already_enrolled"] for r in results) == 6000
    drip = cli.drip()
    try:
        assert len(drip.store.deliveries()) == 3000
        with drip.store.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Enrollment)) == 3000
            assert conn.scalar(select(func.count()).select_from(Consent)) == 3000
    finally:
        drip.close()


def test_names_and_details_with_awkward_characters_are_stored_as_written(
        cli: Cli, tmp_path: Path) -> None:
    names = ['Zoë "Z" O\'Neil', "Back\\slash {braces}, comma", "NULL", ""]
    source = 'src, with \\"quotes\\" {x}'
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "timezone", "source"])
    writer.writerows([f"p{i}@example.com", n, "Asia/Tokyo", source]
                     for i, n in enumerate(names))
    path = write(tmp_path, "odd.csv", out.getvalue())
    assert cli.json("import", path, "--sequence", "basic")["enrolled"] == 4
    for i, name in enumerate(names):
        person = cli.json("subscriber", f"p{i}@example.com")
        assert (person["subscriber"]["name"], person["subscriber"]["timezone"]) == (
            name, "Asia/Tokyo")
        [consent] = person["consents"]
        assert consent["details"]["source"] == source
        assert consent["details"]["line"] == i + 2
