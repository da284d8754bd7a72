"""`drip webhook add/list/remove/deliver/log`, the real command, posting to a receiver on
loopback: an endpoint added by an operator gets the events it asked for, signed with the
secret it was given once."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Run
from tests.support.webhook_receiver import WebhookReceiver, reference_verify


def test_an_operator_adds_lists_and_removes_a_receiver(drip_cli: Run) -> None:
    with WebhookReceiver() as receiver:
        url = receiver.base + "/crm"
        bad = drip_cli("webhook", "add", url, "--events", "enrolled,opened")
        assert bad.returncode == 2 and "'opened' is not an event" in bad.stdout + bad.stderr
        added = drip_cli("webhook", "add", url, "--events", "enrolled", "--events",
                         "unsubscribed", "--json", check=True)
        endpoint = json.loads(added.stdout)
        assert endpoint["events"] == ["enrolled", "unsubscribed"]
        assert endpoint["secret"].startswith("whsec_")
        again = drip_cli("webhook", "add", url)
        assert again.returncode == 4, again.stdout + again.stderr
        listed = json.loads(drip_cli("webhook", "list", "--json", check=True).stdout)
        assert [(e["url"], e["events"]) for e in listed] == [(url, ["enrolled",
                                                                    "unsubscribed"])]
        assert "secret" not in listed[0]
        drip_cli("enroll", "ann@example.com", "--sequence", "basic", check=True)
        drip_cli("dispatch", check=True)  # email.sent: not asked for, so never queued
        drip_cli("unsubscribe", "ann@example.com", check=True)
        said = drip_cli("webhook", "deliver", check=True).stdout
        assert "Delivered 2" in said, said
        assert [(kind, data["email"]) for _, kind, data in receiver.events("/crm")] == [
            ("enrolled", "ann@example.com"), ("unsubscribed", "ann@example.com")]
        for _, headers, body in receiver.posts:  # as a receiver with the reference library
            assert reference_verify(endpoint["secret"], headers, body)["data"]["email"] == (
                "ann@example.com")
        log = json.loads(drip_cli("webhook", "log", "--json", check=True).stdout)
        assert [(r["event"], r["state"], r["attempts"]) for r in log] == [
            ("unsubscribed", "delivered", 1), ("enrolled", "delivered", 1)]
        assert "enrolled delivered after 1 attempts" in drip_cli("webhook", "log",
                                                                 check=True).stdout
        drip_cli("webhook", "remove", url, check=True)
        gone = drip_cli("webhook", "remove", url)
        assert gone.returncode == 3, gone.stdout + gone.stderr
        assert "No webhook receivers" in drip_cli("webhook", "list", check=True).stdout
        nowhere = drip_cli("webhook", "deliver")
        assert nowhere.returncode == 5 and "drip webhook add" in nowhere.stdout + nowhere.stderr
