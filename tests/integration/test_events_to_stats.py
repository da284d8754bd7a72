"""SendGrid events, parsed and ingested as the web hook does, feed the operator's funnel."""

from __future__ import annotations

from drip import events, stats
from drip.clock import FixedClock
from drip.providers.sendgrid import parse_events
from drip.runtime import Drip
from drip.subscriptions import enroll


def test_events_and_purchases_show_in_the_funnel(drip: Drip, clock: FixedClock) -> None:
    joined = [enroll(drip.store, drip.library, email=f"r{n}@example.com",
                     sequence_key="pht-7-week", now=clock.now(), timezone="Europe/London")
              for n in range(2)]
    drip.dispatcher().run_once()
    sent = [r for r in drip.store.deliveries(states=["sent"]) if r.step_key == "week-1"]
    assert len(sent) == 2 and all(r.nudge == "strength-assessment" for r in sent)
    offer_url = drip.library.offers.get("strength-assessment").url  # type: ignore[union-attr]
    stamp = int(clock.now().timestamp())

    def event(name: str, row_index: int, **extra: object) -> dict[str, object]:
        row = sent[row_index]
        return {"event": name, "email": row.email, "timestamp": stamp,
                "sg_event_id": f"{name}-{row.id}", "delivery_id": str(row.id),
                "step_key": "week-1", **extra}

    payload = [event("delivered", 0), event("delivered", 1), event("open", 0),
               event("click", 0, url=f"{offer_url}?utm_source=drip"),
               event("click", 1, url="https://www.example.com/somewhere-else")]
    report = events.ingest(drip.store, parse_events(payload), clock.now())
    assert (report.received, report.new) == (5, 5)
    again = events.ingest(drip.store, parse_events(payload), clock.now())
    assert again.new == 0  # SendGrid retries: nothing counted twice

    buyer = joined[0].subscriber_id
    clock.advance(days=1)
    drip.store.record_purchase(source="shop", order_id="o-1", subscriber_id=buyer,
                               product="strength-assessment", now=clock.now())
    (funnel,) = stats.funnels(drip.store, drip.library, "pht-7-week")
    week1 = next(s for s in funnel.steps if s.step_key == "week-1")
    assert (week1.sent, week1.delivered, week1.opened, week1.clicked) == (2, 2, 1, 2)
    offer = next(o for o in funnel.offers if o.offer == "strength-assessment")
    assert (offer.shown, offer.clicks, offer.conversions) == (2, 1, 1)
