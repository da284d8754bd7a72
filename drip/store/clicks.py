"""Queries for clicks through the signed redirect: what a click's email was, recording a
click (and the scanner's bursts), and clicks per link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select, update

from drip.clock import as_utc
from drip.models import Click, Delivery, DeliveryTest
from drip.store._base import StoreBase

#: Clicks on two different links of one email this close together are a scanner's burst.
BURST = timedelta(seconds=1)


@dataclass(frozen=True)
class ClickedDelivery:
    """The email a click came from: what it was, so the target can be checked against it."""

    delivery_id: int
    subscriber_id: int
    enrollment_id: int
    sequence_key: str
    step_key: str
    variant: str
    nudge: str | None
    sent_at: datetime | None
    #: The split-test variant it carried, if any.
    test_variant: str | None = None


@dataclass(frozen=True)
class LinkClicks:
    step_key: str
    url: str
    people: int  # counted once per person and link
    scanner_hits: int


class ClickQueries(StoreBase):
    """The click redirect's queries."""

    def clicked_delivery(self, delivery_id: int) -> ClickedDelivery | None:
        with self._session() as s:
            row = s.execute(
                select(Delivery.id, Delivery.subscriber_id, Delivery.enrollment_id,
                       Delivery.sequence_key, Delivery.step_key, Delivery.variant,
                       Delivery.nudge, Delivery.sent_at, DeliveryTest.variant)
                .outerjoin(DeliveryTest, DeliveryTest.delivery_id == Delivery.id)
                .where(Delivery.id == delivery_id)).first()
        if row is None:
            return None
        return ClickedDelivery(int(row[0]), int(row[1]), int(row[2]), row[3], row[4], row[5],
                               row[6], as_utc(row[7]) if row[7] is not None else None, row[8])

    def record_click(self, delivery: ClickedDelivery, url: str, now: datetime,
                     scanner: str | None) -> bool:
        """Record one request through the redirect; True if it counts as a person's click.

        `scanner` is the reason it does not count, if already known. A click on one link
        of an email within BURST of a click on another link of it is a scanner opening
        every link at once: all of that burst is marked, the earlier clicks too. A person's
        click again on a link of theirs already counted is not stored again."""
        with self._session() as s, s.begin():
            burst = list(s.scalars(select(Click.id).where(
                Click.delivery_id == delivery.delivery_id, Click.url != url,
                Click.clicked_at >= now - BURST, Click.clicked_at <= now + BURST)))
            if burst and scanner is None:
                scanner = "burst"
                s.execute(update(Click).where(self._ids_in(Click.id, burst),
                                              Click.scanner.is_(None))
                          .values(scanner="burst"))
            if scanner is None and s.execute(select(Click.id).where(
                    Click.delivery_id == delivery.delivery_id, Click.url == url,
                    Click.scanner.is_(None)).limit(1)).first() is not None:
                return True  # counted already: a person counts once per link
            s.add(Click(delivery_id=delivery.delivery_id, subscriber_id=delivery.subscriber_id,
                        sequence_key=delivery.sequence_key, step_key=delivery.step_key,
                        url=url, clicked_at=now, scanner=scanner))
            return scanner is None

    def link_clicks(self, sequence_key: str) -> list[LinkClicks]:
        """Per step and link: the people who clicked it, and the scanners' hits."""
        people = func.count(distinct(Click.subscriber_id)).filter(Click.scanner.is_(None))
        scanners = func.count(Click.id).filter(Click.scanner.is_not(None))
        with self._session() as s:
            rows = s.execute(
                select(Click.step_key, Click.url, people, scanners)
                .where(Click.sequence_key == sequence_key)
                .group_by(Click.step_key, Click.url)
                .order_by(Click.step_key, Click.url)).all()
        return [LinkClicks(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
