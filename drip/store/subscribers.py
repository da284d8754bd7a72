"""Queries about subscribers, their consent and their enrollments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.clock import as_utc
from drip.errors import Conflict, NotFound
from drip.models import (
    Consent,
    Delivery,
    Enrollment,
    Subscriber,
)
from drip.store._base import (
    Announcement,
    ConsentRecord,
    EnrollOutcome,
    StoreBase,
)

RestartRule = Callable[[str, datetime | None], bool]


class SubscriberQueries(StoreBase):
    """Joining and looking people up."""

    def enroll(
        self,
        *,
        email: str,
        name: str,
        timezone: str,
        sequence_key: str,
        source: str,
        now: datetime,
        first_step: str,
        first_due_at: datetime,
        first_window_end_at: datetime | None,
        consent: ConsentRecord | None,
        restart_if: RestartRule | None = None,
    ) -> EnrollOutcome:
        """Create the subscriber if new, and enroll them with their first delivery planned.

        Enrolling someone already in the sequence changes nothing, unless `restart_if`
        (given the latest enrollment's state and finish time) says to start a new cycle.
        """
        for attempt in range(2):
            try:
                return self._enroll_once(
                    email, name, timezone, sequence_key, source, now, first_step,
                    first_due_at, first_window_end_at, consent, restart_if,
                )
            except IntegrityError:
                if attempt:  # a concurrent enrollment won twice in a row: report, don't loop
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _has_evidence(s: Session, subscriber_id: int, consent: ConsentRecord) -> bool:
        """Is this consent's evidence (say, one opt-in link) already on record?"""
        if consent.evidence_key is None:
            return False
        recorded = s.scalars(select(Consent.details).where(
            Consent.subscriber_id == subscriber_id, Consent.source == consent.source))
        return any(isinstance(d, dict) and d.get("evidence_key") == consent.evidence_key
                   for d in recorded)

    def _enroll_once(
        self, email: str, name: str, timezone: str, sequence_key: str, source: str,
        now: datetime, first_step: str, first_due_at: datetime,
        first_window_end_at: datetime | None, consent: ConsentRecord | None,
        restart_if: RestartRule | None,
    ) -> EnrollOutcome:
        with self._session() as s, s.begin():
            subscriber = s.scalars(select(Subscriber).where(Subscriber.email == email)).first()
            if subscriber is None:
                subscriber = Subscriber(email=email, name=name, timezone=timezone, created_at=now)
                s.add(subscriber)
                s.flush()
            else:
                if subscriber.suppressed_at is not None:
                    raise Conflict(
                        f"{email} is suppressed ({subscriber.suppressed_reason or 'no reason'}); "
                        "run `drip unsuppress` first if that was a mistake."
                    )
                if subscriber.unsubscribed_at is not None:
                    # Only the person takes an unsubscribe back: a confirmed opt-in or a
                    # purchase, whose consent says when. A source alone is only a claim.
                    if consent is None or consent.confirmed_at is None:
                        raise Conflict(
                            f"{email} unsubscribed on {subscriber.unsubscribed_at:%Y-%m-%d}; "
                            "they must opt in or buy again before drip emails them."
                        )
                    subscriber.unsubscribed_at = None  # a fresh opt-in or purchase
                if name and not subscriber.name:
                    subscriber.name = name
            existing = s.scalars(
                select(Enrollment)
                .where(Enrollment.subscriber_id == subscriber.id,
                       Enrollment.sequence_key == sequence_key)
                .order_by(Enrollment.cycle.desc())
            ).first()
            if consent is not None and not self._has_evidence(s, subscriber.id, consent):
                details = consent.details
                if consent.evidence_key is not None:
                    details = {**(details or {}), "evidence_key": consent.evidence_key}
                s.add(Consent(
                    subscriber_id=subscriber.id, sequence_key=sequence_key,
                    source=consent.source, text_version=consent.text_version, ip=consent.ip,
                    user_agent=consent.user_agent, created_at=now,
                    confirmed_at=consent.confirmed_at, details=details,
                ))
            cycle = 1
            if existing is not None:
                finished_at = as_utc(existing.finished_at) if existing.finished_at else None
                if restart_if is None or not restart_if(existing.state, finished_at):
                    return EnrollOutcome(False, subscriber.id, existing.id, existing.state)
                cycle = existing.cycle + 1
                if existing.state in ("active", "paused", "suppressed"):
                    existing.state, existing.finished_at = "restarted", now
                    existing.stop_reason = f"restarted by a new {source}"
                    s.execute(
                        update(Delivery)
                        .where(Delivery.enrollment_id == existing.id,
                               Delivery.state.in_(("scheduled", "claimed", "held")))
                        .values(state="cancelled", finished_at=now, claimed_by=None,
                                lease_until=None,
                                last_error=f"The program restarted after a new {source}.")
                    )
            enrollment = Enrollment(
                subscriber_id=subscriber.id, sequence_key=sequence_key, cycle=cycle,
                state="active", source=source, enrolled_at=now,
            )
            s.add(enrollment)
            s.flush()
            s.add(Delivery(
                enrollment_id=enrollment.id, subscriber_id=subscriber.id,
                sequence_key=sequence_key, seq_no=1, step_key=first_step, variant="main",
                state="scheduled", due_at=first_due_at, window_end_at=first_window_end_at,
                attempts=0, created_at=now,
            ))
            self._announce(s, [Announcement("enrolled", subscriber.id, {
                "email": email, "sequence": sequence_key, "source": source,
                "enrollment_id": enrollment.id})], now)
            return EnrollOutcome(True, subscriber.id, enrollment.id, "active",
                                 restarted=cycle > 1)

    def subscriber_id(self, email: str) -> int:
        with self._session() as s:
            found = s.scalar(select(Subscriber.id).where(Subscriber.email == email))
        if found is None:
            raise NotFound(f"No subscriber has the address {email}.")
        return found

