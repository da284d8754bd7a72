"""Unknown emails by the provider request they went out in, and settling them from what the
provider says it holds (the SendGrid Email Activity API: `drip reconcile`, the reaper)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update

from drip.clock import as_utc
from drip.models import Delivery, Event, Subscriber
from drip.store._base import DELIVERIES, StoreBase
from drip.store.deliveries import WORKER_STOPPED


@dataclass(frozen=True)
class UnknownBatch:
    """The unknown emails of one provider request: (delivery id, address) each."""

    batch_key: str
    members: tuple[tuple[int, str], ...]
    since: datetime  # when the request went unanswered


@dataclass(frozen=True)
class Settled:
    """What settling one batch did: ids marked sent, sent again, or left for an operator
    (the email after it has gone out already, so sending it again would break the order)."""

    sent: tuple[int, ...] = ()
    resent: tuple[int, ...] = ()
    left: tuple[int, ...] = ()


class UnknownQueries(StoreBase):
    """Unknown deliveries grouped by request, and their settlement."""

    def unknown_since(self) -> list[tuple[bool, bool, datetime]]:
        """Each unknown delivery as (has a batch key, its worker stopped mid-request, when
        it became unknown)."""
        t = DELIVERIES
        with self._session() as s:
            return [(key is not None, error == WORKER_STOPPED, as_utc(at or datetime.min))
                    for key, error, at in s.execute(
                        select(t.c.batch_key, t.c.last_error, t.c.finished_at)
                        .where(t.c.state == "unknown"))]

    def unknown_batches(self, before: datetime, limit: int) -> list[UnknownBatch]:
        """The oldest `limit` requests whose unknown emails went unanswered before `before`."""
        t = DELIVERIES
        with self._session() as s:
            keys = [r[0] for r in s.execute(
                select(t.c.batch_key, func.min(t.c.finished_at).label("since"))
                .where(t.c.state == "unknown", t.c.batch_key.is_not(None))
                .group_by(t.c.batch_key)
                .having(func.min(t.c.finished_at) <= before)
                .order_by("since", t.c.batch_key).limit(limit))]
            if not keys:
                return []
            rows = s.execute(
                select(t.c.batch_key, t.c.id, Subscriber.email, t.c.finished_at)
                .join(Subscriber, Subscriber.id == t.c.subscriber_id)
                .where(t.c.state == "unknown", t.c.batch_key.in_(keys))
                .order_by(t.c.id)).all()
        members: dict[str, list[tuple[int, str]]] = {k: [] for k in keys}
        since: dict[str, datetime] = {}
        for key, delivery_id, email, finished in rows:
            members[key].append((delivery_id, email))
            at = as_utc(finished)
            since[key] = min(since.get(key, at), at)
        return [UnknownBatch(k, tuple(members[k]), since[k]) for k in keys if members[k]]

    def settle_unknown(self, batch_key: str, held: Collection[int], now: datetime,
                       how: str) -> Settled:
        """The provider holds `held` of this batch: they are sent. The rest it never took:
        each goes back to the queue, due now, unless the email after it has gone out
        already; its scheduled (or held) follow-up is removed, to be planned again when it
        goes. `how` says who asked, for the ledger."""
        t = DELIVERIES
        with self._session() as s, s.begin():
            rows = s.execute(select(t.c.id, t.c.enrollment_id, t.c.seq_no, t.c.subscriber_id)
                             .where(t.c.batch_key == batch_key, t.c.state == "unknown")).all()
            sent = [r for r in rows if r[0] in held]
            later: dict[int, list[tuple[int, int, str]]] = {}
            missing = [r for r in rows if r[0] not in held]
            if missing:
                for enrollment_id, delivery_id, seq_no, state in s.execute(
                        select(t.c.enrollment_id, t.c.id, t.c.seq_no, t.c.state).where(
                            t.c.enrollment_id.in_([r[1] for r in missing]))).all():
                    later.setdefault(enrollment_id, []).append((delivery_id, seq_no, state))
            resend, left, follow_ups = [], [], []
            for did, enrollment_id, seq_no, _ in missing:
                after = [(i, state) for i, n, state in later.get(enrollment_id, []) if n > seq_no]
                if all(state in ("scheduled", "held") for _, state in after):
                    resend.append(did)
                    follow_ups += [i for i, _ in after]
                else:
                    left.append(did)
            if sent:
                s.execute(update(t).where(t.c.id.in_([r[0] for r in sent]),
                                          t.c.state == "unknown")
                          .values(state="sent", batch_key=None, finished_at=now, last_error=None,
                                  sent_at=func.coalesce(t.c.sent_at, t.c.sending_at, now)))
            self._announce_sent(s, [r[0] for r in sent], now)
            if follow_ups:
                s.execute(delete(Delivery).where(Delivery.id.in_(follow_ups)))
            if resend:
                s.execute(update(t).where(t.c.id.in_(resend), t.c.state == "unknown").values(
                    state="scheduled", due_at=now, window_end_at=None, finished_at=None,
                    sending_at=None, claimed_by=None, lease_until=None, batch_key=None,
                    last_error=f"{how}: the provider never took it, so it is sent again."))
            if left:
                s.execute(update(t).where(t.c.id.in_(left), t.c.state == "unknown").values(
                    batch_key=None,
                    last_error=(f"{how}: the provider never took it, but the email after it "
                                "has gone out already; resolve it by hand (drip resolve).")))
            owners = {r[0]: r[3] for r in rows}
            for did, detail in ([(r[0], "sent") for r in sent] + [(i, "resend") for i in resend]):
                s.add(Event(kind="resolved", delivery_id=did, subscriber_id=owners[did],
                            occurred_at=now, received_at=now, detail=f"{how}: {detail}"))
        return Settled(tuple(r[0] for r in sent), tuple(resend), tuple(left))
