"""The sign-up form over a real database (SQLite and PostgreSQL): no silent UTC, every
refused field back in the same form with what was typed and its sentence, a guessed zone
selected, the program described from its file, and the check-inbox page said once."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from drip.runtime import Drip
from tests.web.test_optin import outbox


def requests_recorded(drip: Drip) -> int:
    from sqlalchemy import func, select

    from drip.models import Event

    with drip.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)
                                .where(Event.kind == "optin_requested")).scalar_one())


def error_beside(page: str, field: str) -> str:
    """The sentence right above a field, tied to it by aria-describedby."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>\s*<(input|select)'
                      rf'[^>]*id="{field}"[^>]*aria-describedby="{field}-error', page)
    assert found, f"no message beside {field}"
    return found.group(1)


def test_the_form_describes_the_program_and_offers_every_zone(client: TestClient) -> None:
    page = client.get("/subscribe").text
    assert "7-Week Proximal Hamstring Strength Program for Runners" in page
    assert "Seven weekly emails that load the hamstring tendon" in page  # its description
    assert "7 weekly emails" in page and "06:30 in the morning, your time" in page
    assert "By pressing the button you agree that Dayna may email you" in page
    assert '<optgroup label="America">' in page and '<option value="UTC">' in page
    assert '<option value="" selected>Choose your timezone</option>' in page
    assert page.count(" selected>") == 1  # nothing but the prompt is chosen for them


def test_a_post_without_a_zone_gets_the_form_back(web_drip: Drip, client: TestClient) -> None:
    answer = client.post("/subscribe", data={"email": "ana@example.com", "name": "Ana",
                                             "sequence": "pht-7-week", "timezone": ""})
    assert answer.status_code == 400
    assert "timezone is missing" in error_beside(answer.text, "timezone")
    assert 'value="ana@example.com"' in answer.text and 'value="Ana"' in answer.text
    assert '<form method="post"' in answer.text
    assert requests_recorded(web_drip) == 0 and outbox(web_drip) == []
    # the JSON door has no default either, and says which field
    refused = client.post("/subscribe", json={"email": "ana@example.com",
                                              "sequence": "pht-7-week"})
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"timezone"}
    assert requests_recorded(web_drip) == 0
    # "UTC" is a choice, not a default
    chosen = client.post("/subscribe", data={"email": "ana@example.com", "timezone": "UTC",
                                             "sequence": "pht-7-week"})
    assert chosen.status_code == 200 and requests_recorded(web_drip) == 1


def test_every_refused_field_is_kept_and_explained_at_once(web_drip: Drip,
                                                           client: TestClient) -> None:
    answer = client.post("/subscribe", data={"email": "ana@@example", "name": "Ana",
                                             "timezone": "London", "sequence": "pht-7-week"})
    assert answer.status_code == 400
    assert "is not a valid email address" in error_beside(answer.text, "email")
    zone_message = error_beside(answer.text, "timezone")
    assert "Did you mean Europe/London?" in zone_message and "selected below" in zone_message
    assert '<option value="Europe/London" selected>' in answer.text
    assert 'value="ana@@example"' in answer.text
    assert requests_recorded(web_drip) == 0 and outbox(web_drip) == []


def test_check_your_inbox_says_its_heading_once(client: TestClient) -> None:
    page = client.post("/subscribe", data={"email": "ana@example.com", "sequence": "pht-7-week",
                                           "timezone": "Europe/London"}).text
    assert page.count("Check your inbox") == 2  # the <title> and the heading, nothing more
    assert "We sent a link to ana@example.com" in page


def test_a_too_long_field_comes_back_in_the_form_too(web_drip: Drip, client: TestClient) -> None:
    answer = client.post("/subscribe", data={"email": "ana@example.com", "name": "N" * 300,
                                             "timezone": "Europe/London",
                                             "sequence": "pht-7-week"})
    assert answer.status_code == 400
    assert "at most 200 characters" in error_beside(answer.text, "name")
    assert '<option value="Europe/London" selected>' in answer.text  # the valid zone is kept
    assert requests_recorded(web_drip) == 0


def test_a_valid_zone_the_list_does_not_show_is_kept(client: TestClient) -> None:
    answer = client.post("/subscribe", data={"email": "nope", "timezone": "US/Pacific",
                                             "sequence": "pht-7-week"})
    assert answer.status_code == 400
    assert '<option value="US/Pacific" selected>' in answer.text
    assert 'id="timezone-error"' not in answer.text
