"""`drip import --from kit|mailchimp|shopify` reads each tool's standard export as the tool
writes it (tests/fixtures/imports), consent evidence and leaving included; `--map` names
columns of one's own."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Run
from tests.conftest import FIXTURES
from tests.support.cli import Cli

IMPORTS = FIXTURES / "imports"


def test_mailchimp_export_keeps_consent_evidence_and_who_left(drip_cli: Run, cli: Cli) -> None:
    done = [json.loads(drip_cli("import", str(IMPORTS / name), "--sequence", "basic",
                                "--from", "mailchimp", "--json", check=True).stdout)
            for name in ("mailchimp_subscribed.csv", "mailchimp_unsubscribed.csv",
                         "mailchimp_cleaned.csv")]
    assert [(d["rows"], d["enrolled"], d["unsubscribed"], d["suppressed"]) for d in done] == [
        (2, 2, 0, 0), (1, 0, 1, 0), (1, 0, 0, 1)]
    assert "address" in done[0]["ignored_columns"]
    ana = cli.json("subscriber", "ana@example.com")
    assert (ana["subscriber"]["name"], ana["subscriber"]["timezone"]) == ("Ana Lopez",
                                                                          "Europe/London")
    [consent] = ana["consents"]
    assert consent["created_at"].startswith("2024-03-01T08:15:00")  # OPTIN_TIME
    assert consent["confirmed_at"].startswith("2024-03-01T08:17:31")  # CONFIRM_TIME
    assert consent["ip"] == "203.0.113.8"  # CONFIRM_IP: where they confirmed
    assert consent["details"]["optin_ip"] == "203.0.113.7"
    assert consent["details"]["source"] == "mailchimp"
    ben = cli.json("subscriber", "ben@example.com")["consents"][0]
    assert ben["created_at"].startswith("2024-05-02T18:00:00")  # no OPTIN_TIME: confirmed
    cy = cli.json("subscriber", "cy@example.com")["subscriber"]
    assert cy["unsubscribed_at"].startswith("2024-06-10T07:30:00")  # UNSUB_TIME
    dee = cli.json("subscriber", "dee@example.com")["subscriber"]
    assert dee["suppressed_at"].startswith("2024-07-01T12:00:00")  # CLEAN_TIME
    assert sorted(s["email"] for s in cli.json("sends")) == ["ana@example.com",
                                                             "ben@example.com"]


def test_kit_export_refuses_the_unconfirmed_with_their_line(drip_cli: Run, cli: Cli) -> None:
    path = str(IMPORTS / "kit_subscribers.csv")
    refused = drip_cli("import", path, "--sequence", "basic", "--from", "kit")
    assert refused.returncode == 2
    assert ("line 5: gus@example.com never confirmed their subscription (state "
            "'inactive'), so there is no consent to email them") in refused.stderr
    assert cli.json("sends") == []  # nothing was imported
    done = json.loads(drip_cli("import", path, "--sequence", "basic", "--from", "kit",
                               "--skip-invalid", "--json", check=True).stdout)
    assert (done["enrolled"], done["unsubscribed"], done["suppressed"]) == (2, 1, 1)
    assert [i["line"] for i in done["invalid"]] == [5]  # after a two-line note on lines 2-3
    eve = cli.json("subscriber", "eve@example.com")
    assert eve["consents"][0]["created_at"].startswith("2023-01-27T11:43:55")
    assert eve["subscriber"]["name"] == "Eve"
    assert sorted(s["email"] for s in cli.json("sends")) == ["eve@example.com",
                                                             "fay@example.com"]


def test_shopify_customers_without_marketing_consent_are_refused(cli: Cli) -> None:
    path = str(IMPORTS / "shopify_customers.csv")
    result = cli.json("import", path, "--sequence", "basic", "--from", "shopify",
                      "--skip-invalid")
    assert result["invalid"] == [{"line": 4, "problem": (
        "kim@example.com has no marketing consent ('accepts email marketing' is 'no'); "
        "only people who agreed to marketing email can be imported")}]
    assert (result["rows"], result["enrolled"]) == (2, 2)
    assert cli.json("subscriber", "jo@example.com")["subscriber"]["name"] == "Jo Reyes"
    assert cli("subscriber", "kim@example.com", code=None).exit_code != 0


def test_map_names_columns_of_ones_own_and_a_bad_map_is_refused(cli: Cli,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "liste.csv"
    path.write_text("E-Mail,Vorname,Zeitzone,Eingetragen\n"
                    "uwe@example.com,Uwe,Europe/Berlin,2024-09-01T10:00:00Z\n",
                    encoding="utf-8")
    result = cli.json("import", str(path), "--sequence", "basic", "--map", "E-Mail=email",
                      "--map", "vorname=name", "--map", "Zeitzone=timezone",
                      "--map", "Eingetragen=joined_at")
    assert (result["enrolled"], result["ignored_columns"]) == (1, [])
    uwe = cli.json("subscriber", "uwe@example.com")
    assert (uwe["subscriber"]["name"], uwe["subscriber"]["timezone"]) == ("Uwe",
                                                                          "Europe/Berlin")
    bad = cli("import", str(path), "--sequence", "basic", "--map", "E-Mail=mail", code=2)
    assert "--map 'E-Mail=mail' names the field 'mail', which drip does not read" in bad.stderr
    unknown = cli("import", str(path), "--sequence", "basic", "--from", "hubspot", code=2)
    assert "--from 'hubspot' is not a tool drip knows" in unknown.stderr
    wrong = cli("import", str(path), "--sequence", "basic", "--from", "mailchimp", code=2)
    assert "The header row has no 'email address' column" in wrong.stderr
