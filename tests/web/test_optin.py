"""Double opt-in: one answer for everyone, consent evidence, a signed expiring link, a limit."""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from starlette.testclient import TestClient

from drip.clock import FixedClock
from drip.errors import BadSignature
from drip.lifecycle import suppress
from drip.models import Consent, Enrollment
from drip.optin import CONFIRM_MAX_AGE
from drip.runtime import Drip
from drip.subscriptions import enroll
from drip.web import create_app
from tests.conftest import make_settings

UA = {"User-Agent": "Mozilla/5.0 (test phone)"}


def outbox(drip: Drip) -> list[Path]:
    folder = drip.settings.outbox_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def confirm_path(drip: Drip, eml: Path) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (url,) = re.findall(r"https://drip\.test(/confirm/\S+)", text)
    assert "List-Unsubscribe" not in message  # transactional: no list headers
    return str(url)


def consents(drip: Drip) -> list[Any]:
    with drip.store.engine.connect() as conn:
        return list(conn.execute(select(Consent.source, Consent.text_version, Consent.ip,
                                        Consent.user_agent, Consent.confirmed_at,
                                        Consent.details)))


def test_form_opt_in_then_confirm_enrolls_with_consent(web_drip: Drip,
                                                       client: TestClient) -> None:
    form = client.get("/subscribe")
    assert form.status_code == 200 and 'name="email"' in form.text and "Dayna" in form.text
    answer = client.post("/subscribe", data={"email": "Eve@Example.com", "name": "Eve",
                                             "timezone": "Europe/Paris",
                                             "sequence": "pht-7-week"}, headers=UA)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert web_drip.store.deliveries() == []  # nothing until confirmed
    (eml,) = outbox(web_drip)
    path = confirm_path(web_drip, eml)
    shown = client.get(path)
    assert shown.status_code == 200 and "eve@example.com" in shown.text
    assert web_drip.store.deliveries() == []  # GET (a mail scanner) confirms nothing
    done = client.post(path, headers={"User-Agent": "Other browser"})
    assert done.status_code == 200 and "You are in" in done.text
    (row,) = web_drip.store.deliveries(email="eve@example.com")
    assert (row.step_key, row.state, row.timezone) == ("week-1", "scheduled", "Europe/Paris")
    (consent,) = consents(web_drip)
    source, version, ip, agent, confirmed_at, details = consent
    assert (source, version, ip, agent) == ("optin", "2026-01", "testclient", UA["User-Agent"])
    assert confirmed_at is not None
    assert details["confirmed_user_agent"] == "Other browser" and details["requested_at"]
    # the wording the person saw is kept word for word, whatever the version string says
    assert details["consent_text"].startswith("By pressing the button you agree that Dayna")
    assert details["consent_text"] in form.text
    again = client.post(path)
    assert again.status_code == 200 and "already" in again.text
    assert len(web_drip.store.deliveries()) == 1
    assert len(consents(web_drip)) == 1  # the same link pressed twice is one consent


def test_a_json_opt_in_does_not_claim_wording_drip_did_not_show(
        web_drip: Drip, client: TestClient) -> None:
    client.post("/subscribe", json={"email": "jo@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (eml,) = outbox(web_drip)
    assert client.post(confirm_path(web_drip, eml)).status_code == 200
    ((source, version, *_, details),) = consents(web_drip)
    assert (source, version) == ("optin", "2026-01")
    assert details["consent_text"] is None and details["request_id"] > 0


def test_json_opt_in_answers_the_same_for_known_unknown_and_suppressed(
        web_drip: Drip, client: TestClient) -> None:
    enroll(web_drip.store, web_drip.library, email="known@example.com",
           sequence_key="pht-7-week", now=web_drip.clock.now(), timezone="UTC")
    enroll(web_drip.store, web_drip.library, email="gone@example.com",
           sequence_key="pht-7-week", now=web_drip.clock.now(), timezone="UTC")
    suppress(web_drip.store, "gone@example.com", web_drip.clock.now(), "bounced")
    answers = [client.post("/subscribe", json={"email": address, "sequence": "pht-7-week",
                                               "timezone": "UTC"})
               for address in ("new@example.com", "known@example.com", "gone@example.com")]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    addresses = ("new2@example.com", "known@example.com", "gone@example.com")
    forms = [client.post("/subscribe", data={"email": address, "sequence": "pht-7-week",
                                             "timezone": "UTC"}) for address in addresses]
    # the page names the address the person typed, and nothing else differs
    assert len({(f.status_code, f.content.replace(a.encode(), b"ADDRESS"))
                for f, a in zip(forms, addresses, strict=True)}) == 1
    recipients = sorted(email.message_from_bytes(p.read_bytes())["To"] for p in outbox(web_drip))
    assert "gone@example.com" not in " ".join(recipients)  # never mail a suppressed address
    assert len(recipients) == 4


def test_bad_opt_in_input_is_400_and_sends_nothing(web_drip: Drip, client: TestClient) -> None:
    bad: list[dict[str, Any]] = [
        {"email": "nope", "sequence": "pht-7-week"},
        {"email": "a@example.com", "sequence": "no-such"},
        {"email": "a@example.com", "sequence": "pht-7-week", "timezone": "Mars/Base"},
        {"email": ["a@example.com"], "sequence": "pht-7-week"},
        {"email": "a@example.com" * 50, "sequence": "pht-7-week"},
    ]
    for data in bad:
        assert client.post("/subscribe", json=data).status_code == 400, data
    assert client.post("/subscribe", content=b"{nope",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/subscribe", json=["a@example.com"]).status_code == 400
    assert client.post("/subscribe", data={"email": "nope"}).status_code == 400
    assert client.get("/subscribe?sequence=no-such").status_code == 404
    assert outbox(web_drip) == []


def test_confirmation_links_are_signed_and_expire(web_drip: Drip, client: TestClient,
                                                  clock: FixedClock) -> None:
    client.post("/subscribe", json={"email": "fay@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (eml,) = outbox(web_drip)
    path = confirm_path(web_drip, eml)
    token = path.removeprefix("/confirm/")
    other = web_drip.links.signer.make("confirm", 1, "mallory@example.com")
    # Change the signature's first character: it carries six whole bits. (Changing the
    # last ones, as this test once did, sometimes only touched base64's unused trailing
    # bits, or wrote back the same characters, and the token was rightly still valid.)
    signature = token.rsplit(".", 1)[1]
    tampered = token[:-len(signature)] + ("B" if signature[0] == "A" else "A") + signature[1:]
    for forged in ("/confirm/" + tampered, "/confirm/" + token.replace(".", "", 1),
                   "/confirm/" + other,
                   "/confirm/" + web_drip.links.signer.make("unsubscribe", 1, 1)):
        assert client.post(forged).status_code == 404
    assert web_drip.store.deliveries() == []


class EightDaysAgo(TimestampSigner):
    """Signs as if it were eight days ago (itsdangerous' hook for the signing time)."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 8 * 24 * 3600


def test_expired_confirmation_is_404(web_drip: Drip, client: TestClient) -> None:
    client.post("/subscribe", json={"email": "old@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (eml,) = outbox(web_drip)
    request_id = int(eml.name.split("-confirm-")[1].removesuffix(".eml"))
    fresh = web_drip.links.signer.make("confirm", request_id, "old@example.com")
    stale = URLSafeTimedSerializer(web_drip.settings.secret_key, salt="drip.confirm",
                                   signer=EightDaysAgo).dumps(
        [request_id, "old@example.com"])
    assert client.get(f"/confirm/{fresh}").status_code == 200
    with pytest.raises(BadSignature, match="expired"):  # refused for its age, not its signature
        web_drip.links.signer.read("confirm", stale, max_age=CONFIRM_MAX_AGE)
    assert client.get(f"/confirm/{stale}").status_code == 404
    assert client.post(f"/confirm/{stale}").status_code == 404
    assert web_drip.store.deliveries() == []


def test_opt_in_is_rate_limited_per_ip(tmp_path: Path, database_url: str,
                                       clock: FixedClock) -> None:
    limited = Drip.from_settings(make_settings(tmp_path, database_url, subscribe_limit=3), clock)
    try:
        with TestClient(create_app(limited)) as test_client:
            codes = [test_client.post("/subscribe", json={"email": f"r{i}@example.com",
                                                          "sequence": "pht-7-week",
                                                          "timezone": "UTC"}).status_code
                     for i in range(5)]
            assert codes == [202, 202, 202, 429, 429]
            clock.advance(hours=1, seconds=1)
            assert test_client.post("/subscribe", json={
                "email": "later@example.com", "sequence": "pht-7-week",
                "timezone": "UTC"}).status_code == 202
    finally:
        limited.close()


def test_a_used_confirmation_link_does_not_undo_a_later_unsubscribe(
        web_drip: Drip, client: TestClient, clock: FixedClock) -> None:
    # The link stays valid for a week and sits in the inbox (and in forwards): pressing it
    # again after unsubscribing must not sign the person up on the old request's evidence.
    client.post("/subscribe", data={"email": "gil@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (eml,) = outbox(web_drip)
    path = confirm_path(web_drip, eml)
    assert client.post(path).status_code == 200
    who = web_drip.store.subscriber_id("gil@example.com")
    with web_drip.store.engine.connect() as conn:
        (enrollment,) = conn.execute(select(Enrollment.id)).scalars()
    one_click = web_drip.links.unsubscribe(who, enrollment).removeprefix("https://drip.test")
    assert client.post(one_click, content=b"List-Unsubscribe=One-Click", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    clock.advance(days=1)
    again = client.post(path)
    assert again.status_code == 409 and "sign-up form" in again.text
    assert web_drip.store.subscriber_by_id(who).state == "unsubscribed"
    assert [r.state for r in web_drip.store.deliveries(email="gil@example.com")] == [
        "cancelled"]
    assert len(consents(web_drip)) == 1
    # asking again is a new request with its own link, and that one works
    client.post("/subscribe", data={"email": "gil@example.com", "sequence": "pht-7-week",
                                    "timezone": "UTC"})
    (newer,) = [p for p in outbox(web_drip) if p != eml]
    assert client.post(confirm_path(web_drip, newer)).status_code == 200
    assert web_drip.store.subscriber_by_id(who).state == "active"
    assert len(consents(web_drip)) == 2
