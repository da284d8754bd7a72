"""The kill switch stops a long dispatch pass between batches, not only at the next tick."""

from __future__ import annotations

from collections.abc import Sequence

from drip import lifecycle
from drip.message import Message
from drip.providers.base import SendResult
from drip.runtime import Drip
from drip.subscriptions import enroll


class PullsTheSwitch:
    """A provider that accepts each batch, and after the first one an operator pulls the
    kill switch (as `drip pause --all` would from another terminal)."""

    name = "outbox"

    def __init__(self, drip: Drip) -> None:
        self.drip = drip
        self.batches: list[list[str]] = []

    def send_batch(self, messages: Sequence[Message]) -> list[SendResult]:
        self.batches.append([m.to_email for m in messages])
        lifecycle.pause_all(self.drip.store, self.drip.clock.now(), "pulled mid-pass")
        return [SendResult(m.delivery_id, "accepted", message_id=f"m{m.delivery_id}")
                for m in messages]

    def close(self) -> None:
        pass


def test_the_kill_switch_stops_a_pass_after_the_batch_in_hand(basic_drip: Drip) -> None:
    for i in range(5):
        enroll(basic_drip.store, basic_drip.library, email=f"runner{i}@example.com",
               sequence_key="basic", now=basic_drip.clock.now())
    provider = PullsTheSwitch(basic_drip)
    dispatcher = basic_drip.dispatcher(provider)
    dispatcher.batch_size = 2
    report = dispatcher.run_once()
    assert report.paused and len(provider.batches) == 1 and len(report.sent) == 2
    assert basic_drip.store.count_deliveries(["scheduled"]) == 3 + 2  # 3 waiting, 2 week-2s
    lifecycle.resume_all(basic_drip.store)
    rest = basic_drip.dispatcher().run_once()
    everyone = {f"runner{i}@example.com" for i in range(5)}
    assert sorted(s.email for s in rest.sent) == sorted(everyone - set(provider.batches[0]))
