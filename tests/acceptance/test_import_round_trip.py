"""`drip export subscribers` then `drip import` into an empty database loses nobody's state:
the people who left stay out, recorded as such, and everyone keeps their join date."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, delete

from drip.models import Base
from tests.acceptance.conftest import Run
from tests.support.cli import Cli


def empty(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    engine.dispose()


def test_export_then_import_into_an_empty_database_is_lossless(
        cli: Cli, drip_cli: Run, database_url: str, tmp_path: Path) -> None:
    # Joined elsewhere long ago: an import that keeps the date, as the tool wrote it.
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(
        "email,name,timezone,joined_at\n"
        "ana@example.com,\"Ana, the runner\",Europe/Berlin,2025-01-05T08:00:00Z\n"
        "ben@example.com,Ben,Asia/Tokyo,2025-02-01T10:00:00Z\n"
        "cy@example.com,Cy,America/New_York,2025-03-01T12:00:00Z\n"
        "dee@example.com,Dee,UTC,2025-04-01T12:00:00Z\n", encoding="utf-8")
    cli("import", str(earlier), "--sequence", "basic")
    cli("enroll", "eve@example.com", "--sequence", "basic")
    cli("pause", "ben@example.com")
    cli("unsubscribe", "cy@example.com")
    cli("suppress", "dee@example.com", "--reason", "bounce: 550 5.1.1, mailbox gone")
    first = drip_cli("export", "subscribers", check=True).stdout
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(first))}
    assert rows["ana@example.com"]["joined_at"] == "2025-01-05T08:00:00+00:00"
    assert [rows[e]["state"] for e in sorted(rows)] == ["active", "paused", "unsubscribed",
                                                       "suppressed", "active"]

    empty(database_url)
    exported = tmp_path / "subscribers.csv"
    exported.write_text(first, encoding="utf-8")
    drip_cli("import", str(exported), "--sequence", "basic", check=True)
    assert drip_cli("export", "subscribers", check=True).stdout == first

    # Nobody who left is emailed; the paused person's first email waits for `drip resume`.
    pending = {(s["email"], s["state"]) for s in cli.json("sends")}
    assert pending == {("ana@example.com", "scheduled"), ("eve@example.com", "scheduled"),
                       ("ben@example.com", "held")}
    assert cli.json("subscriber", "cy@example.com")["enrollments"][0]["state"] == \
        "unsubscribed"
    assert cli.json("subscriber", "dee@example.com")["deliveries"] == []
    again = cli.json("import", str(exported), "--sequence", "basic")
    assert (again["enrolled"], again["already_enrolled"]) == (0, 5)


def test_other_tools_words_for_leaving_keep_those_people_out(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "email,state,unsubscribed_at\n"
        "ana@example.com,active,\n"
        "ben@example.com,bounced,\n"
        "cy@example.com,cancelled,\n"
        "dee@example.com,,2025-06-01 10:00:00 UTC\n"
        "eve@example.com,complained,\n", encoding="utf-8")
    result = cli.json("import", str(path), "--sequence", "basic")
    assert (result["enrolled"], result["unsubscribed"], result["suppressed"]) == (1, 2, 2)
    assert [s["email"] for s in cli.json("sends")] == ["ana@example.com"]
    states = {r["email"]: (r["state"], r["unsubscribed_at"]) for r in json_rows(cli)}
    assert states["dee@example.com"] == ("unsubscribed", "2025-06-01T10:00:00+00:00")
    assert states["ben@example.com"][0] == states["eve@example.com"][0] == "suppressed"


def json_rows(cli: Cli) -> list[dict[str, str]]:
    import json

    return list(json.loads(cli("export", "subscribers", "--format", "json").stdout))


def test_imported_people_get_week_1_inside_their_own_send_window(cli: Cli,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "world.csv"
    zones = ["Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Auckland",
             "Asia/Kolkata", "UTC"]
    path.write_text("email,timezone\n" + "".join(
        f"p{n}@example.com,{z}\n" for n, z in enumerate(zones)), encoding="utf-8")
    now = datetime.now(UTC)
    cli("import", str(path), "--sequence", "basic")
    for send in cli.json("sends"):
        due = datetime.fromisoformat(send["due_at"])
        local = due.astimezone(ZoneInfo(send["timezone"]))
        assert local.time() == time(6, 30), send  # the sequence's send time, never at night
        assert due.timestamp() - now.timestamp() < 24 * 3600, send
        # either today's slot (still open now) or the next one
        assert now.astimezone(ZoneInfo(send["timezone"])).time() < time(21, 0) or due > now
