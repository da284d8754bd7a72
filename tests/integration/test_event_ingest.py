"""The bulk event write: each event tied to its delivery and person, its payload kept as sent,
deliveries confirmed once, duplicates skipped (COPY on PostgreSQL, one INSERT on SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from drip import events
from drip.clock import FixedClock, as_utc
from drip.models import Delivery, Event
from drip.providers.sendgrid import parse_events
from drip.runtime import Drip
from drip.subscriptions import enroll


def event(name: str, email: str, event_id: str, stamp: int,
          delivery_id: int | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"event": name, "email": email, "timestamp": stamp,
                            "sg_event_id": event_id, "category": ["pht-7-week"], **extra}
    if delivery_id is not None:
        item["delivery_id"] = str(delivery_id)
    return item


def test_events_are_tied_kept_as_sent_and_confirm_deliveries_once(
        drip: Drip, clock: FixedClock) -> None:
    people = [enroll(drip.store, drip.library, email=f"r{n}@example.com",
                     sequence_key="pht-7-week", now=clock.now(), timezone="UTC").subscriber_id
              for n in range(3)]
    sent_at = clock.now()
    drip.dispatcher().run_once()
    ids = {r.email: r.id for r in drip.store.deliveries(states=["sent"])
           if r.step_key == "week-1"}
    d0, d1, d2 = (ids[f"r{n}@example.com"] for n in range(3))
    with drip.store.engine.begin() as conn:  # what lost provider answers leave behind
        conn.execute(text("UPDATE deliveries SET state = 'unknown', sent_at = NULL "
                          "WHERE id = :d"), {"d": d1})
        conn.execute(text("UPDATE deliveries SET state = 'unknown' WHERE id = :d"), {"d": d2})
    clock.advance(minutes=5)
    heard = clock.now()
    stamp = int(heard.timestamp())
    burst = [
        event("delivered", "r0@example.com", "e-1", stamp, d0),
        event("processed", "r1@example.com", "e-2", stamp, d1),
        event("open", "r2@example.com", "e-3", stamp, d2, useragent="Mozilla/5.0 \"q\"\t\\"),
        event("click", "R2@Example.com", "e-4", stamp, 987654, url="https://x.example/é"),
        event("bounce", "who@example.com", "e-5", stamp, type="blocked", reason="421"),
        event("delivered", "r0@example.com", "e-1", stamp, d0),  # repeated in the burst
    ]
    report = events.ingest(drip.store, parse_events(burst), heard)
    assert (report.received, report.new) == (6, 5)

    with drip.store.engine.connect() as conn:
        stored = {r[0]: r[1:] for r in conn.execute(
            select(Event.provider_event_id, Event.kind, Event.delivery_id, Event.subscriber_id,
                   Event.email, Event.payload).where(Event.provider_event_id.is_not(None)))}
    assert {k: v[:4] for k, v in stored.items()} == {
        "e-1": ("delivered", d0, people[0], "r0@example.com"),
        "e-2": ("processed", d1, people[1], "r1@example.com"),
        "e-3": ("opened", d2, people[2], "r2@example.com"),
        "e-4": ("clicked", None, people[2], "R2@Example.com"),  # no such delivery: by address
        "e-5": ("deferred", None, None, "who@example.com"),  # nobody drip knows
    }
    assert [stored[f"e-{n}"][4] for n in range(1, 6)] == burst[:5]

    def confirmations() -> dict[int, tuple[str, Any, Any]]:
        with drip.store.engine.connect() as conn:
            return {r[0]: (r[1], r[2] and as_utc(r[2]), r[3] and as_utc(r[3]))
                    for r in conn.execute(
                        select(Delivery.id, Delivery.state, Delivery.sent_at,
                               Delivery.confirmed_at).where(Delivery.id.in_((d0, d1, d2))))}

    assert confirmations() == {d0: ("sent", sent_at, heard),
                               d1: ("sent", heard, heard),  # unknown, and the provider had it
                               d2: ("unknown", sent_at, None)}  # an open confirms nothing
    clock.advance(hours=1)
    later = [event("delivered", "r0@example.com", "e-6", stamp, d0),
             event("delivered", "r2@example.com", "e-7", stamp, d2)]
    assert events.ingest(drip.store, parse_events(later), clock.now()).new == 2
    assert confirmations() == {d0: ("sent", sent_at, heard),  # first heard of, kept
                               d1: ("sent", heard, heard),
                               d2: ("sent", sent_at, clock.now())}


def test_a_drop_a_bounce_or_a_deferral_settles_an_unknown_email_as_sent(
        drip: Drip, clock: FixedClock) -> None:
    """SendGrid reports those only for mail it accepted: the email went out."""
    for n in range(5):
        enroll(drip.store, drip.library, email=f"u{n}@example.com", sequence_key="pht-7-week",
               now=clock.now(), timezone="UTC")
    drip.dispatcher().run_once()
    ids = [r.id for r in drip.store.deliveries(states=["sent"]) if r.step_key == "week-1"]
    with drip.store.engine.begin() as conn:
        conn.execute(text("UPDATE deliveries SET state = 'unknown', sent_at = NULL "
                          "WHERE step_key = 'week-1' AND state = 'sent'"))
    stamp = int(clock.now().timestamp())
    d0, d1, d2, d3, d4 = sorted(ids)
    burst = [
        event("dropped", "u0@example.com", "x-1", stamp, d0, reason="Bounced Address"),
        event("dropped", "u1@example.com", "x-2", stamp, d1, reason="Unsubscribed Address"),
        event("bounce", "u2@example.com", "x-3", stamp, d2, type="bounce", reason="550"),
        event("deferred", "u3@example.com", "x-4", stamp, d3, response="421 try later"),
        event("open", "u4@example.com", "x-5", stamp, d4),
    ]
    events.ingest(drip.store, parse_events(burst), clock.now())
    states = {r.id: r.state for r in drip.store.deliveries() if r.id in ids}
    assert states == {d0: "sent", d1: "sent", d2: "sent", d3: "sent", d4: "unknown"}
