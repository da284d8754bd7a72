"""Queries for a subscriber's send preference: when their emails should arrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from drip.clock import as_utc
from drip.errors import NotFound
from drip.models import Enrollment, Subscriber
from drip.schedule import SendPreference
from drip.store._base import DELIVERIES, Move, StoreBase, rowcount


@dataclass(frozen=True)
class PreferenceRow:
    """Who the preferences page is for, and what they chose so far."""

    subscriber_id: int
    email: str
    name: str
    timezone: str
    preference: SendPreference
    unsubscribed: bool


@dataclass(frozen=True)
class Upcoming:
    """A scheduled email of an active enrollment, and the email before it (if one went)."""

    delivery_id: int
    enrollment_id: int
    sequence_key: str
    step_key: str
    variant: str
    due_at: datetime
    #: (step, variant, when) of the email that went out before it; None before the first.
    previous: tuple[str, str, datetime] | None


def preference_of(send_time: str | None, weekday: str | None) -> SendPreference:
    """The stored columns as a SendPreference (a value that no longer parses is left out)."""
    try:
        at = time.fromisoformat(send_time) if send_time else None
    except ValueError:
        at = None
    return SendPreference(at, weekday or None)


class PreferenceQueries(StoreBase):
    """Reading and saving the preferences page, and the emails it moves."""

    def send_preference(self, subscriber_id: int) -> PreferenceRow:
        with self._session() as s:
            row = s.execute(select(Subscriber.id, Subscriber.email, Subscriber.name,
                                   Subscriber.timezone, Subscriber.send_time,
                                   Subscriber.send_weekday, Subscriber.unsubscribed_at)
                            .where(Subscriber.id == subscriber_id)).first()
        if row is None:
            raise NotFound("This link is for a subscriber who is no longer on our list.")
        return PreferenceRow(row[0], row[1], row[2], row[3], preference_of(row[4], row[5]),
                             row[6] is not None)

    def upcoming(self, subscriber_id: int) -> list[Upcoming]:
        """The scheduled emails of the subscriber's active enrollments, with the email that
        went out before each one."""
        t = DELIVERIES
        with self._session() as s:
            pending = s.execute(
                select(t.c.id, t.c.enrollment_id, t.c.sequence_key, t.c.step_key, t.c.variant,
                       t.c.due_at, t.c.seq_no)
                .join(Enrollment, Enrollment.id == t.c.enrollment_id)
                .where(t.c.subscriber_id == subscriber_id, t.c.state == "scheduled",
                       Enrollment.state == "active")
                .order_by(t.c.due_at)).all()
            result = []
            for r in pending:
                before = s.execute(
                    select(t.c.step_key, t.c.variant,
                           func.coalesce(t.c.sent_at, t.c.sending_at, t.c.due_at))
                    .where(t.c.enrollment_id == r[1], t.c.seq_no < r[6],
                           t.c.state.in_(("sent", "unknown")))
                    .order_by(t.c.seq_no.desc()).limit(1)).first()
                result.append(Upcoming(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]),
                                       (before[0], before[1], as_utc(before[2]))
                                       if before is not None else None))
            return result

    def save_send_preference(self, subscriber_id: int, preference: SendPreference,
                             moves: Sequence[Move]) -> int:
        """Keep the subscriber's choice and move their scheduled emails into the new slots,
        together; the number of emails moved (one claimed meanwhile stays as it is)."""
        with self._session() as s, s.begin():
            s.execute(update(Subscriber).where(Subscriber.id == subscriber_id).values(
                send_time=(preference.send_time.strftime("%H:%M")
                           if preference.send_time is not None else None),
                send_weekday=preference.weekday))
            if not moves:
                return 0
            t = DELIVERIES
            result = s.connection().execute(
                update(t).where(t.c.id == bindparam("b_id"), t.c.state == "scheduled")
                .values(due_at=bindparam("b_due"), window_end_at=bindparam("b_end"),
                        step_key=bindparam("b_step"), variant=bindparam("b_variant")),
                [{"b_id": m.delivery_id, "b_due": m.due_at, "b_end": m.window_end_at,
                  "b_step": m.step_key, "b_variant": m.variant} for m in moves])
            return rowcount(result)



def send_preferences(store: StoreBase, s: Session,
                     subscriber_ids: Iterable[int]) -> dict[int, SendPreference]:
    """Each subscriber's preference, where they set one, inside the caller's transaction."""
    ids = sorted(set(subscriber_ids))
    if not ids:
        return {}
    rows = s.execute(select(Subscriber.id, Subscriber.send_time, Subscriber.send_weekday)
                     .where(store._ids_in(Subscriber.id, ids),
                            (Subscriber.send_time.is_not(None))
                            | (Subscriber.send_weekday.is_not(None)))).all()
    return {int(r[0]): preference_of(r[1], r[2]) for r in rows}


__all__ = ["PreferenceQueries", "PreferenceRow", "Upcoming"]
