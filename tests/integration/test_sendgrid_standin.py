"""The SendGrid stand-in itself: it must refuse what real SendGrid refuses, or the delivery
tests would prove nothing."""

from __future__ import annotations

import json

import pytest
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from tests.support.sendgrid_standin import SendGridStandIn, violations_of

VALID = {
    "from": {"email": "coach@example.com", "name": "Dayna"},
    "subject": "Week 1",
    "content": [{"type": "text/plain", "value": "hi"}, {"type": "text/html", "value": "<p>hi"}],
    "personalizations": [{"to": [{"email": "ana@example.com"}],
                          "substitutions": {"%%first_name%%": "Ana"},
                          "custom_args": {"delivery_id": "1"}}],
}


def test_a_valid_body_passes() -> None:
    assert violations_of(VALID) == []


@pytest.mark.parametrize("broken", [
    {**VALID, "personalizations": [{"substitutions": {}}]},              # no "to"
    {**VALID, "content": [{"type": "text/plain"}]},                       # no value
    {**VALID, "from": {"name": "no address"}},                            # no email
    {**VALID, "personalizations": [{"to": [{"email": "not-an-address"}]}]},
    {**VALID, "personalizations": VALID["personalizations"] * 1001},      # > 1000
    {**VALID, "personalizations": [{"to": [{"email": "a@example.com"}],
                                    "substitutions": {"%%x%%": "y" * 10_001}}]},
    {**VALID, "personalizations": [{"to": [{"email": "a@example.com"}],
                                    "custom_args": {"delivery_id": 1}}]},
    {**VALID, "content": list(reversed(VALID["content"]))},               # html first
])
def test_violations_are_caught(broken: dict[str, object]) -> None:
    assert violations_of(broken) != []


def test_the_real_client_is_refused_on_a_bad_key_or_body() -> None:
    with SendGridStandIn(api_key="SG.right") as server:
        wrong = SendGridAPIClient("SG.wrong", host=server.url)
        with pytest.raises(HTTPError) as refused:
            wrong.client.mail.send.post(request_body=VALID)
        assert refused.value.status_code == 401
        right = SendGridAPIClient("SG.right", host=server.url)
        with pytest.raises(HTTPError) as bad:
            right.client.mail.send.post(request_body={**VALID, "personalizations": [{}]})
        assert bad.value.status_code == 400
        assert server.violations
        server.violations.clear()
        ok = right.client.mail.send.post(request_body=VALID)
        assert ok.status_code == 202 and ok.headers["X-Message-Id"]
        assert server.accepted_emails() == ["ana@example.com"]
        server.assert_no_violations()


def test_a_request_read_but_not_yet_answered_is_in_flight() -> None:
    import threading

    with SendGridStandIn(api_key="SG.right") as server:
        server.delay_next(1.5)
        client = SendGridAPIClient("SG.right", host=server.url)
        sender = threading.Thread(target=client.client.mail.send.post,
                                  kwargs={"request_body": VALID})
        sender.start()
        for _ in range(100):
            if server.unanswered_emails():
                break
            sender.join(0.05)
        assert server.unanswered_emails() == ["ana@example.com"]
        sender.join(10)
        assert server.unanswered_emails() == []
        assert server.accepted_emails() == ["ana@example.com"]


def test_a_body_that_is_not_declared_json_is_refused_with_415() -> None:
    with SendGridStandIn(api_key="SG.right") as server:
        client = SendGridAPIClient("SG.right", host=server.url)
        client.client.request_headers["Content-Type"] = "text/plain"
        with pytest.raises(HTTPError) as refused:
            client.client.mail.send.post(request_body=json.dumps(VALID))
        assert refused.value.status_code == 415 and not server.accepted_emails()
        # drip sends its JSON text declared as application/json with a charset
        client.client.request_headers["Content-Type"] = "application/json; charset=utf-8"
        assert client.client.mail.send.post(request_body=json.dumps(VALID)).status_code == 202
        assert server.accepted_emails() == ["ana@example.com"]
