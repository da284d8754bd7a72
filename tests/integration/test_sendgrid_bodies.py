"""SendGrid bodies carry each per-recipient value once (no HTML-escaped copy of a plain name
or address, the checkpoint URL once) and still mean, once SendGrid substitutes them, the
very emails drip would write itself (Message.text() and .html()). The stand-in validates
every body against SendGrid's schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drip.links import Links
from drip.message import Content, Message, html_placeholders, recipient_values
from drip.planner import NOT_YET, PASSED, REPEAT_LAST
from drip.providers.sendgrid import SendGridProvider
from drip.tokens import Signer
from tests.support.sendgrid_standin import SendGridStandIn

KEY = "SG.test-key"
LINKS = Links("https://coach.example.com", Signer("k"))
CONTENT = Content(
    key="pht:week-3:main", subject="Week 3, %%first_name%%", preheader="",
    html=html_placeholders(
        '<p>Hi %%first_name%% (%%email%%)</p><a href="%%checkpoint_passed_url%%">Yes</a> '
        '<a href="%%checkpoint_not_yet_url%%">Not yet</a> <a href="%%pause_url%%">Pause</a> '
        '<a href="%%unsubscribe_url%%">Unsubscribe</a>\n'),
    text=("Hi %%first_name%%\nYes: %%checkpoint_passed_url%%\nNot yet: "
          "%%checkpoint_not_yet_url%%\nUnsubscribe: %%unsubscribe_url%%\n"),
    content_hash="h")


def message(delivery_id: int, name: str, asked: int | None = None) -> Message:
    address = f"runner{delivery_id}@example.com"
    asked = delivery_id if asked is None else asked
    values = recipient_values({
        "first_name": name.split()[0], "email": address,
        "unsubscribe_url": LINKS.unsubscribe(delivery_id, delivery_id),
        "pause_url": LINKS.pause(delivery_id, delivery_id),
        "checkpoint_passed_url": LINKS.checkpoint(asked, PASSED),
        "checkpoint_not_yet_url": LINKS.checkpoint(asked, NOT_YET),
        **({"checkpoint_repeat_url": LINKS.checkpoint(delivery_id, REPEAT_LAST)}
           if asked != delivery_id else {})})
    return Message(delivery_id=delivery_id, enrollment_id=delivery_id, sequence_key="pht",
                   step_key="week-3", variant="main", to_email=address, to_name=name,
                   from_email="coach@example.com", from_name="Dayna", content=CONTENT,
                   values=values)


@pytest.fixture
def standin() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(api_key=KEY) as server:
        yield server
        server.assert_no_violations()


def substituted(body: dict[str, Any], personalization: dict[str, Any]) -> tuple[str, str]:
    """What SendGrid delivers: each tag replaced by its value, in text and HTML."""
    text, html = (c["value"] for c in body["content"])
    for tag, value in personalization["substitutions"].items():
        text, html = text.replace(tag, value), html.replace(tag, value)
    return text, html


def test_each_value_goes_once_and_the_emails_mean_the_same(standin: SendGridStandIn) -> None:
    plain = [message(n, f"Runner {n}") for n in range(1, 6)]
    odd = [message(10, "O'Brien Ann"), message(11, "Ann <Co>")]
    reminder = [message(20, "Late Runner", asked=3)]  # its buttons answer email 3
    batch = plain + odd + reminder
    provider = SendGridProvider(KEY, host=standin.url, timeout=5.0)
    results = provider.send_batch(batch)
    provider.close()
    assert {r.verdict for r in results} == {"accepted"}
    # one request for the plain, one for the names HTML changes, one for the reminder
    assert len(standin.requests) == 3
    by_id = {m.delivery_id: m for m in batch}
    seen = set()
    for body in standin.requests:
        for p in body["personalizations"]:
            sent = by_id[int(p["custom_args"]["delivery_id"])]
            seen.add(sent.delivery_id)
            assert substituted(body, p) == (sent.text(), sent.html())
            subs = p["substitutions"]
            if sent in plain:
                assert "%%first_name:html%%" not in subs and "%%email:html%%" not in subs
                assert "%%checkpoint_passed_url%%" not in subs
                assert "%%checkpoint_not_yet_url%%" not in subs
                assert list(subs.values()).count(sent.values["pause_url"]) == 1
                token = sent.values["checkpoint_passed_url"].split("/c/")[1].split("?")[0]
                assert sum(token in v for v in subs.values()) == 1  # the checkpoint URL once
    assert seen == set(by_id)
