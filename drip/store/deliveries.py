"""Queries of the dispatch loop: claim, mark, record, plan, expire."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from drip.clock import as_utc
from drip.models import (
    CheckpointAnswer,
    Delivery,
    Enrollment,
    Event,
    Pause,
    Purchase,
    Subscriber,
    Tag,
)
from drip.planner import Sent
from drip.schedule import SendPreference
from drip.store._base import (
    DELIVERIES,
    FINAL_STATES,
    ClaimedDelivery,
    MissedWindow,
    Move,
    NextSteps,
    Outcome,
    PlannedDelivery,
    Recorded,
    Sending,
    StoreBase,
    WentOut,
    pg_array,
    rowcount,
)
from drip.store.experiments import SplitSent, record_splits
from drip.store.preferences import send_preferences
from drip.store.tags import subscriber_tags

#: Why the reaper made an email unknown (drip status tells this cause from "no answer").
WORKER_STOPPED = ("The worker stopped after handing this email to the provider and before "
                  "recording the answer, so it may or may not have gone out.")

# PostgreSQL takes a whole batch as a few array parameters and joins them with
# unnest(): one statement and one round trip per batch instead of one per row.
# `d.id = ANY(:ids)` repeats the join key as an index condition: without it the planner
# may hash-join the batch against a sequential scan of the whole table, which is cheap at
# 30,000 rows and ruinous at a million. For the same reason no other condition on these
# statements can use an index: a plain `d.state = 'scheduled'` let the planner, guessing
# from stale statistics, walk all of ix_deliveries_due (a million entries) to find the
# batch's thousand rows, 170-300 ms per batch; the state tests are CASE expressions, or
# absent where this transaction's row locks already guarantee the state.
_PG_MARK_SENDING = text("""
    UPDATE deliveries AS d
       SET state = 'sending', sending_at = :now, lease_until = :lease_until,
           attempts = d.attempts + 1, step_key = v.step_key, variant = v.variant,
           nudge = v.nudge, content_hash = v.content_hash, batch_key = :batch_key
      FROM unnest(CAST(:ids AS bigint[]), CAST(:steps AS text[]), CAST(:variants AS text[]),
                  CAST(:nudges AS text[]), CAST(:hashes AS text[]))
           AS v(id, step_key, variant, nudge, content_hash)
     WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[]))
       AND d.state = 'claimed' AND d.claimed_by = :worker
 RETURNING d.id
""")
_PG_RECORD_OUTCOMES = text(f"""
    UPDATE deliveries AS d
       SET state = v.state,
           provider = coalesce(v.provider, d.provider),
           provider_message_id = coalesce(v.message_id, d.provider_message_id),
           last_error = v.error,
           due_at = coalesce(v.due_at, d.due_at),
           sent_at = CASE WHEN v.state = 'sent' THEN CAST(:now AS timestamptz)
                          ELSE d.sent_at END,
           finished_at = CASE WHEN v.state IN ({", ".join(f"'{s}'" for s in FINAL_STATES)})
                              THEN CAST(:now AS timestamptz) END,
           claimed_by = NULL, lease_until = NULL,
           attempts = d.attempts - v.refund,
           batch_key = CASE WHEN v.state = 'unknown' THEN coalesce(v.batch_key, d.batch_key)
                       END
      FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:providers AS text[]),
                  CAST(:message_ids AS text[]), CAST(:errors AS text[]),
                  CAST(:due_ats AS timestamptz[]), CAST(:refunds AS int[]),
                  CAST(:batch_keys AS text[]))
           AS v(id, state, provider, message_id, error, due_at, refund, batch_key)
     WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[]))
       AND CASE WHEN d.state = ANY(CAST(:from_states AS text[])) THEN true
                WHEN d.state = 'unknown' THEN v.state IN ('sent', 'failed')
                ELSE false END
""")
#: Due rows, locked (not written) for the transaction that decides and marks them: a
#: worker that dies before committing leaves them scheduled, as if never claimed. The
#: lock keeps them scheduled until _PG_SEND_LOCKED marks them, so that needs no state test.
_PG_CLAIM = text("""
    WITH due AS MATERIALIZED (
        SELECT id FROM deliveries
         WHERE state = 'scheduled' AND due_at <= :now
           AND (window_end_at IS NULL OR window_end_at > :now)
           AND NOT (sequence_key = ANY(CAST(:skip AS text[])))
         ORDER BY due_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED)
    SELECT d.id, d.enrollment_id, d.subscriber_id, d.sequence_key, d.seq_no, d.step_key,
           d.variant, d.nudge, d.due_at, d.attempts, s.email, s.name, s.timezone,
           e.enrolled_at, e.state, s.unsubscribed_at, s.suppressed_at, s.offers_opt_out_at
      FROM due
      JOIN deliveries AS d ON d.id = due.id
      JOIN subscribers AS s ON s.id = d.subscriber_id
      JOIN enrollments AS e ON e.id = d.enrollment_id
     ORDER BY d.due_at, d.id
""")
_PG_SEND_LOCKED = text("""
    UPDATE deliveries AS d
       SET state = 'sending', sending_at = :now, lease_until = :lease_until,
           claimed_by = :worker, attempts = d.attempts + 1, step_key = v.step_key,
           variant = v.variant, nudge = v.nudge, content_hash = v.content_hash,
           batch_key = :batch_key
      FROM unnest(CAST(:ids AS bigint[]), CAST(:steps AS text[]), CAST(:variants AS text[]),
                  CAST(:nudges AS text[]), CAST(:hashes AS text[]))
           AS v(id, step_key, variant, nudge, content_hash)
     WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[]))
 RETURNING d.id
""")
_PG_PLAN = text("""
    INSERT INTO deliveries (enrollment_id, subscriber_id, sequence_key, seq_no, step_key,
                            variant, nudge, state, due_at, window_end_at, attempts, created_at)
    SELECT v.enrollment_id, v.subscriber_id, v.sequence_key, v.seq_no, v.step_key, v.variant,
           v.nudge, 'scheduled', v.due_at, v.window_end_at, 0, :now
      FROM unnest(CAST(:enrollment_ids AS bigint[]), CAST(:subscriber_ids AS bigint[]),
                  CAST(:sequence_keys AS text[]), CAST(:seq_nos AS integer[]),
                  CAST(:steps AS text[]), CAST(:variants AS text[]), CAST(:nudges AS text[]),
                  CAST(:due_ats AS timestamptz[]), CAST(:window_end_ats AS timestamptz[]))
           AS v(enrollment_id, subscriber_id, sequence_key, seq_no, step_key, variant, nudge,
                due_at, window_end_at)
        ON CONFLICT (enrollment_id, seq_no) DO NOTHING
""")


class DeliveryQueries(StoreBase):
    """The delivery ledger as the dispatcher uses it."""

    def paused_scopes(self) -> set[str]:
        with self._session() as s:
            return set(s.scalars(select(Pause.scope)))

    def expire_leases(self, now: datetime, next_steps: NextSteps | None = None) -> Recorded:
        """Return expired claims to the queue; mark expired in-flight sends unknown.

        A claim that expired was never handed to the provider, so it is safe to send
        again. A send whose lease expired may have reached the provider, so it is never
        re-sent on its own: it becomes unknown (or sent, if the provider's webhook already
        reported it handled), and its enrollment moves on, planned by `next_steps` in the
        same transaction so a crash cannot leave it stranded.
        """
        with self._session() as s, s.begin():
            s.execute(
                update(Delivery)
                .where(Delivery.state == "claimed", Delivery.lease_until < now)
                .values(state="scheduled", claimed_by=None, lease_until=None)
            )
            # The provider's webhook already reported some of them handled: those went out.
            confirmed = s.execute(
                update(Delivery)
                .where(Delivery.state == "sending", Delivery.lease_until < now,
                       Delivery.confirmed_at.is_not(None))
                .values(state="sent", lease_until=None, finished_at=now,
                        sent_at=func.coalesce(Delivery.sent_at, Delivery.confirmed_at),
                        last_error=None)
                .returning(Delivery.id)
            ).scalars().all()
            rows = s.execute(
                update(Delivery)
                .where(Delivery.state == "sending", Delivery.lease_until < now)
                .values(
                    state="unknown", lease_until=None, finished_at=now,
                    last_error=WORKER_STOPPED,
                )
                .returning(Delivery.id)
            ).scalars().all()
            went_out = self._went_out(s, [*confirmed, *rows], now)
            planned = self._follow(s, went_out, next_steps, (), now)
            return Recorded(went_out, planned)

    def missed_windows(self, now: datetime, limit: int) -> list[MissedWindow]:
        """Scheduled deliveries whose send window closed before they could go out."""
        with self._session() as s:
            rows = s.execute(
                select(Delivery.id, Delivery.sequence_key, Subscriber.timezone,
                       Subscriber.send_time, Subscriber.send_weekday)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.state == "scheduled", Delivery.window_end_at <= now)
                .limit(limit)
            ).all()
        return [MissedWindow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def move_due(self, moves: Sequence[tuple[int, datetime, datetime | None]]) -> None:
        if not moves:
            return
        with self._session() as s, s.begin():
            s.connection().execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == bindparam("b_id"),
                       DELIVERIES.c.state == "scheduled")
                .values(due_at=bindparam("b_due"), window_end_at=bindparam("b_end")),
                [{"b_id": i, "b_due": d, "b_end": e} for i, d, e in moves],
            )

    def claim_due(
        self,
        now: datetime,
        limit: int,
        worker: str,
        lease_until: datetime,
        skip_sequences: Iterable[str] = (),
    ) -> list[ClaimedDelivery]:
        """Claim up to `limit` due deliveries for this worker, in one statement, and commit
        the claims (state `claimed`, with a lease the reaper honours).

        The dispatcher uses `claim_batch` instead, which needs no claim write; this is for
        tools and tests that hold claims across transactions.
        """
        with self._session() as s, s.begin():
            return self._claim_rows(s, now, limit, worker, lease_until, skip_sequences)

    @contextmanager
    def claim_batch(self, now: datetime, limit: int, worker: str,
                    lease_until: datetime) -> Iterator[DueBatch]:
        """Hold up to `limit` due deliveries for one open transaction, in which the
        dispatcher reads what it needs, decides each email and marks it `sending`.

        On PostgreSQL the rows are only locked (FOR UPDATE SKIP LOCKED): concurrent workers
        skip them, and if this worker dies or fails before the commit they are simply
        still scheduled. That saves a claim write per email. SQLite, which has one writer
        at a time, claims them with a write so the transaction holds the write lock from
        its first statement. Leaving the block without an exception commits.

        The same transaction reads the operators' pauses first: with the kill switch on it
        claims nothing (`DueBatch.kill_switch`), and it never claims a paused sequence.
        """
        with self._session() as s, s.begin():
            if self.dialect == "postgresql":
                paused = set(_by_key_and_pauses(s))
            else:
                paused = set(s.scalars(select(Pause.scope)))
            skipped = sorted(p.removeprefix("sequence:") for p in paused
                             if p.startswith("sequence:"))
            from_states: tuple[str, ...] = (
                ("scheduled",) if self.dialect == "postgresql" else ("claimed",))
            if "all" in paused:  # the kill switch: claim nothing
                rows: list[ClaimedDelivery] = []
            elif self.dialect == "postgresql":
                rows = [_claimed(r) for r in s.execute(_PG_CLAIM, {
                    "now": now, "limit": limit, "skip": pg_array(skipped)}).all()]
            else:
                rows = self._claim_rows(s, now, limit, worker, lease_until, skipped)
            yield DueBatch(self, s, rows, worker, now, from_states,
                           frozenset(paused))

    def _claim_rows(self, s: Session, now: datetime, limit: int, worker: str,
                    lease_until: datetime, skip_sequences: Iterable[str]
                    ) -> list[ClaimedDelivery]:
        """Claim due rows with one UPDATE … RETURNING over a FOR UPDATE SKIP LOCKED pick
        (concurrent PostgreSQL workers never claim the same row; SQLite has one writer)."""
        t = DELIVERIES
        conditions = [
            t.c.state == "scheduled",
            t.c.due_at <= now,
            or_(t.c.window_end_at.is_(None), t.c.window_end_at > now),
        ]
        skipped = list(skip_sequences)
        if skipped:
            conditions.append(t.c.sequence_key.not_in(skipped))
        due = (
            select(t.c.id)
            .where(*conditions)
            .order_by(t.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        claim = (
            update(t)
            .where(t.c.id == due.c.id)
            .values(state="claimed", claimed_by=worker, lease_until=lease_until)
            .returning(t.c.id)
        )
        if self.dialect == "postgresql":
            _by_key(s)
        ids = list(s.execute(claim).scalars())
        if not ids:
            return []
        rows = s.execute(
            select(
                t.c.id, t.c.enrollment_id, t.c.subscriber_id, t.c.sequence_key, t.c.seq_no,
                t.c.step_key, t.c.variant, t.c.nudge, t.c.due_at, t.c.attempts,
                Subscriber.email, Subscriber.name, Subscriber.timezone,
                Enrollment.enrolled_at, Enrollment.state,
                Subscriber.unsubscribed_at, Subscriber.suppressed_at,
                Subscriber.offers_opt_out_at,
            )
            .join(Subscriber, Subscriber.id == t.c.subscriber_id)
            .join(Enrollment, Enrollment.id == t.c.enrollment_id)
            .where(self._ids_in(t.c.id, ids))
            .order_by(t.c.due_at, t.c.id)
        ).all()
        return [_claimed(r) for r in rows]

    def mark_sending(self, sending: Sequence[Sending], worker: str, now: datetime,
                     lease_until: datetime, batch_key: str | None = None) -> set[int]:
        """Commit that these claimed emails, exactly as decided, are about to go to the
        provider.

        Returns the ids this worker still held; a claim that expired and was taken by
        another worker is not among them and must not be sent.
        """
        if not sending:
            return set()
        with self._session() as s, s.begin():
            return self._mark_sending(s, sending, worker, now, lease_until, _PG_MARK_SENDING,
                                      "claimed", batch_key)

    def _mark_sending(self, s: Session, sending: Sequence[Sending], worker: str,
                      now: datetime, lease_until: datetime, pg_statement: Any,
                      from_state: str, batch_key: str | None) -> set[int]:
        ids = [item.delivery_id for item in sending]
        t = DELIVERIES
        if self.dialect == "postgresql":
            return set(s.execute(pg_statement, {
                "now": now, "lease_until": lease_until, "worker": worker, "ids": pg_array(ids),
                "batch_key": batch_key,
                "steps": pg_array(i.step_key for i in sending),
                "variants": pg_array(i.variant for i in sending),
                "nudges": pg_array(i.nudge for i in sending),
                "hashes": pg_array(i.content_hash for i in sending),
            }).scalars())
        held = set(s.execute(
            update(Delivery)
            .where(self._ids_in(Delivery.id, ids), Delivery.state == from_state,
                   Delivery.claimed_by == worker)
            .values(state="sending", sending_at=now, lease_until=lease_until,
                    attempts=Delivery.attempts + 1, batch_key=batch_key)
            .returning(Delivery.id)
        ).scalars())
        if held:
            s.connection().execute(
                update(t).where(t.c.id == bindparam("b_id"))
                .values(step_key=bindparam("b_step"), variant=bindparam("b_variant"),
                        nudge=bindparam("b_nudge"), content_hash=bindparam("b_hash")),
                [{"b_id": i.delivery_id, "b_step": i.step_key, "b_variant": i.variant,
                  "b_nudge": i.nudge, "b_hash": i.content_hash}
                 for i in sending if i.delivery_id in held],
            )
        return held

    def release_claims(self, ids: Sequence[int], worker: str) -> int:
        """Give back claims that were never handed to the provider."""
        if not ids:
            return 0
        with self._session() as s, s.begin():
            result = s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.claimed_by == worker,
                       Delivery.state.in_(("claimed", "sending")))
                .values(state="scheduled", claimed_by=None, lease_until=None)
            )
            return rowcount(result)

    def record_outcomes(self, outcomes: Sequence[Outcome], now: datetime, *,
                        went_out: Mapping[int, WentOut] | None = None,
                        next_steps: NextSteps | None = None,
                        finished: Sequence[int] = ()) -> Recorded:
        """Write back what happened to each delivery and, in the same transaction, plan
        what follows the ones that went out (`next_steps`) and complete the `finished`
        enrollments, so no crash can record a send without planning the next email.

        `went_out` describes the sent or unknown ones as the dispatcher already knows them
        (saving a read-back); any it does not describe are read from the ledger.

        A send the reaper already marked unknown (its lease ran out while the provider was
        answering) takes a late "sent" or "failed", which settles it; it never goes back to
        the queue on a late transient answer, because its enrollment has already moved on.
        """
        if not outcomes and not finished:
            return Recorded([])
        with self._session() as s, s.begin():
            if self.dialect == "postgresql":
                _by_key(s)
            return self._record(s, outcomes, now, went_out, next_steps, finished,
                                ("claimed", "sending"))

    def _record(self, s: Session, outcomes: Sequence[Outcome], now: datetime,
                went_out: Mapping[int, WentOut] | None, next_steps: NextSteps | None,
                finished: Sequence[int], from_states: Sequence[str]) -> Recorded:
        t = DELIVERIES
        known = went_out or {}
        conn = s.connection()
        if outcomes and self.dialect == "postgresql":
            conn.execute(_PG_RECORD_OUTCOMES, {
                "now": now,
                "from_states": pg_array(list(from_states)),
                "ids": pg_array([o.delivery_id for o in outcomes]),
                "states": pg_array([o.state for o in outcomes]),
                "providers": pg_array([o.provider for o in outcomes]),
                "message_ids": pg_array([o.message_id for o in outcomes]),
                "errors": pg_array([o.error for o in outcomes]),
                "due_ats": pg_array([o.retry_at for o in outcomes]),
                "refunds": pg_array([int(o.refund_attempt) for o in outcomes]),
                "batch_keys": pg_array([o.batch_key for o in outcomes]),
            })
        elif outcomes:
            self._record_rows(conn, [{
                "b_id": o.delivery_id,
                "b_state": o.state,
                "b_provider": o.provider,
                "b_message_id": o.message_id,
                "b_error": o.error,
                "b_due": o.retry_at,
                "b_sent": now if o.state == "sent" else None,
                "b_finished": now if o.state in FINAL_STATES else None,
                "b_refund": int(o.refund_attempt),
                "b_batch_key": o.batch_key,
            } for o in outcomes], from_states)
        doubted = [o.delivery_id for o in outcomes if o.state == "unknown"]
        if doubted:
            # The provider's webhook reported it handled before the worker gave up waiting
            # for its answer (a late answer, a timeout): it went out, as the reaper judges.
            s.execute(update(t).where(self._ids_in(t.c.id, doubted), t.c.state == "unknown",
                                      t.c.confirmed_at.is_not(None))
                      .values(state="sent", batch_key=None, last_error=None,
                              sent_at=func.coalesce(t.c.sent_at, t.c.confirmed_at)))
        holds = {o.delivery_id: o.error for o in outcomes if o.state == "held"}
        if holds:
            enrollments = s.execute(
                select(t.c.enrollment_id, t.c.id).where(self._ids_in(t.c.id, holds))
            ).all()
            pausing = s.scalars(select(Enrollment.id).where(
                self._ids_in(Enrollment.id, [e for e, _ in enrollments]),
                Enrollment.state == "active")).all()
            conn.execute(
                update(Enrollment).where(Enrollment.id == bindparam("b_enrollment"))
                .values(state="paused", paused_at=now, stop_reason=bindparam("b_reason")),
                [{"b_enrollment": e, "b_reason": holds[d]} for e, d in enrollments],
            )
            self._announce_enrollments(s, "paused", pausing, now)
        self._announce_sent(s, [o.delivery_id for o in outcomes
                                if o.state == "sent" or o.state == "unknown"], now)
        moved_on = [o.delivery_id for o in outcomes if o.state in ("sent", "unknown")]
        moved = [known[i] for i in moved_on if i in known]
        moved += self._went_out(s, [i for i in moved_on if i not in known], now)
        planned = self._follow(s, moved, next_steps, finished, now)
        return Recorded(moved, planned)

    def _follow(self, s: Session, went_out: Sequence[WentOut], next_steps: NextSteps | None,
                finished: Sequence[int], now: datetime) -> int:
        """Plan what comes after `went_out`, inside the caller's transaction."""
        planned: list[PlannedDelivery] = []
        done = list(finished)
        if next_steps is not None and went_out:
            following, completed = next_steps(went_out)
            planned.extend(following)
            done.extend(completed)
        return self._plan(s, planned, done, now)

    @staticmethod
    def _record_rows(conn: Any, rows: list[dict[str, Any]], from_states: Sequence[str]) -> None:
        t = DELIVERIES
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"),
                   # executemany cannot expand IN (...): spell the states out
                   or_(*(t.c.state == state for state in from_states),
                       and_(t.c.state == "unknown",
                            or_(bindparam("b_state") == "sent",
                                bindparam("b_state") == "failed"))))
            .values(
                state=bindparam("b_state"),
                provider=func.coalesce(bindparam("b_provider"), t.c.provider),
                provider_message_id=func.coalesce(bindparam("b_message_id"),
                                                  t.c.provider_message_id),
                last_error=bindparam("b_error"),
                due_at=func.coalesce(bindparam("b_due"), t.c.due_at),
                sent_at=func.coalesce(bindparam("b_sent"), t.c.sent_at),
                finished_at=bindparam("b_finished"),
                claimed_by=None,
                lease_until=None,
                attempts=t.c.attempts - bindparam("b_refund"),
                # an unknown email keeps the key it went with; settled, it needs none
                batch_key=case((bindparam("b_state") == "unknown",
                                func.coalesce(bindparam("b_batch_key"), t.c.batch_key))),
            ),
            rows,
        )

    def _went_out(self, s: Session, ids: list[int], now: datetime) -> list[WentOut]:
        if not ids:
            return []
        t = DELIVERIES
        rows = s.execute(
            select(t.c.id, t.c.enrollment_id, t.c.subscriber_id, t.c.sequence_key, t.c.seq_no,
                   t.c.step_key, t.c.variant, Subscriber.timezone,
                   func.coalesce(t.c.sent_at, t.c.sending_at, t.c.due_at))
            .join(Subscriber, Subscriber.id == t.c.subscriber_id)
            .where(self._ids_in(t.c.id, ids))
        ).all()
        return [WentOut(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], as_utc(r[8]))
                for r in rows]

    def plan(self, planned: Sequence[PlannedDelivery], finished: Sequence[int],
             now: datetime) -> int:
        """Insert next deliveries (a second plan of the same occurrence is ignored) and
        mark enrollments with nothing left to send as completed. Returns rows inserted."""
        with self._session() as s, s.begin():
            return self._plan(s, planned, finished, now)

    def _plan(self, s: Session, planned: Sequence[PlannedDelivery], finished: Sequence[int],
              now: datetime) -> int:
        inserted = 0
        held = [p for p in planned if p.hold is not None]
        if held:
            inserted += self._plan_held(s, held, now)
            planned = [p for p in planned if p.hold is None]
        if planned and self.dialect == "postgresql":
            inserted += rowcount(s.execute(_PG_PLAN, {
                "now": now,
                "enrollment_ids": pg_array(p.enrollment_id for p in planned),
                "subscriber_ids": pg_array(p.subscriber_id for p in planned),
                "sequence_keys": pg_array(p.sequence_key for p in planned),
                "seq_nos": pg_array(p.seq_no for p in planned),
                "steps": pg_array(p.step_key for p in planned),
                "variants": pg_array(p.variant for p in planned),
                "nudges": pg_array(p.nudge for p in planned),
                "due_ats": pg_array(p.due_at for p in planned),
                "window_end_ats": pg_array(p.window_end_at for p in planned),
            }))
        elif planned:
            statement = self._insert(Delivery).on_conflict_do_nothing(
                index_elements=["enrollment_id", "seq_no"]
            )
            result = s.connection().execute(statement, [
                {"enrollment_id": p.enrollment_id, "subscriber_id": p.subscriber_id,
                 "sequence_key": p.sequence_key, "seq_no": p.seq_no,
                 "step_key": p.step_key, "variant": p.variant, "nudge": p.nudge,
                 "state": "scheduled", "due_at": p.due_at,
                 "window_end_at": p.window_end_at, "attempts": 0, "created_at": now}
                for p in planned
            ])
            inserted += rowcount(result)
        if finished:
            completed = s.execute(
                update(Enrollment)
                .where(self._ids_in(Enrollment.id, sorted(set(finished))),
                       Enrollment.state == "active")
                .values(state="completed", finished_at=now)
                .returning(Enrollment.id)
            ).scalars().all()
            self._announce_enrollments(s, "graduated", completed, now)
        return inserted

    def _plan_held(self, s: Session, held: Sequence[PlannedDelivery], now: datetime) -> int:
        """Insert each held next email and pause its enrollment with the hold's reason.
        Rare (a step removed under a send in flight), so one row at a time."""
        inserted = 0
        for p in held:
            result = s.execute(
                self._insert(Delivery).values(
                    enrollment_id=p.enrollment_id, subscriber_id=p.subscriber_id,
                    sequence_key=p.sequence_key, seq_no=p.seq_no, step_key=p.step_key,
                    variant=p.variant, nudge=p.nudge, state="held", due_at=p.due_at,
                    window_end_at=p.window_end_at, attempts=0, created_at=now,
                    last_error=p.hold,
                ).on_conflict_do_nothing(index_elements=["enrollment_id", "seq_no"]))
            if rowcount(result):
                inserted += 1
                paused = s.execute(
                    update(Enrollment)
                    .where(Enrollment.id == p.enrollment_id, Enrollment.state == "active")
                    .values(state="paused", paused_at=now, stop_reason=p.hold)
                    .returning(Enrollment.id)).scalars().all()
                self._announce_enrollments(s, "paused", paused, now)
        return inserted

    def histories(self, enrollment_ids: Iterable[int]) -> dict[int, list[Sent]]:
        """Every email that went out (or may have) per enrollment, oldest first, with answers."""
        with self._session() as s:
            return self._histories(s, enrollment_ids)

    def _histories(self, s: Session, enrollment_ids: Iterable[int]) -> dict[int, list[Sent]]:
        ids = sorted(set(enrollment_ids))
        if not ids:
            return {}
        t = DELIVERIES
        rows = s.execute(
            select(t.c.enrollment_id, t.c.seq_no, t.c.step_key, t.c.variant, t.c.nudge,
                   CheckpointAnswer.answer,
                   func.coalesce(t.c.sent_at, t.c.sending_at, t.c.due_at), t.c.id)
            .outerjoin(CheckpointAnswer, CheckpointAnswer.delivery_id == t.c.id)
            .where(self._ids_in(t.c.enrollment_id, ids), t.c.state.in_(("sent", "unknown")))
            .order_by(t.c.enrollment_id, t.c.seq_no)
        ).all()
        result: dict[int, list[Sent]] = {}
        for r in rows:
            result.setdefault(r[0], []).append(
                Sent(r[1], r[2], r[3], r[4], r[5], as_utc(r[6]), r[7]))
        return result

    def ownership(self, subscriber_ids: Iterable[int]) -> dict[int, set[str]]:
        """What each subscriber has bought or booked: purchased products and tags."""
        with self._session() as s:
            return self._ownership(s, subscriber_ids)

    def _ownership(self, s: Session, subscriber_ids: Iterable[int]) -> dict[int, set[str]]:
        ids = sorted(set(subscriber_ids))
        if not ids:
            return {}
        owned: dict[int, set[str]] = {i: set() for i in ids}
        rows: list[Any] = list(s.execute(union_all(
            select(Purchase.subscriber_id, Purchase.product)
            .where(self._ids_in(Purchase.subscriber_id, ids)),
            select(Tag.subscriber_id, Tag.tag).where(self._ids_in(Tag.subscriber_id, ids)),
            # a refunded product is not offered again, though it is no longer bought
            select(Event.subscriber_id, Event.detail)
            .where(Event.kind == "refunded", self._ids_in(Event.subscriber_id, ids)),
        )).all())
        for subscriber_id, item in rows:
            owned[subscriber_id].add(item)
        return owned


def _by_key(s: Session) -> None:
    """Make this transaction's batch statements go by index, in order, whatever the
    statistics say, with plans made for each run's own values (PostgreSQL only).

    A batch names its rows: a thousand ids, or the first thousand due. When the table's
    statistics are stale (a million enrollments imported before autovacuum's next
    ANALYZE, or autovacuum off), the planner guesses a handful of matching rows and picks
    a bitmap or sequential scan that reads every due row, or the whole table, to return
    the thousand: measured at a million due, 170-300 ms per batch instead of a few ms,
    and growing with the backlog. Walking the primary key, or ix_deliveries_due in due
    order with LIMIT, is right at any size.

    psycopg prepares a statement after five runs, and PostgreSQL may then switch to a
    generic plan, blind to the batch's arrays: it guesses 10 rows for unnest() and joins
    a 1,000-row batch by nested loop (a million comparisons: 140-270 ms instead of 15 ms
    per batch, seen with auto_explain). So these transactions plan every run. Only these:
    set for every connection, it slowed the webhook's event ingest by a quarter.
    """
    s.execute(_PG_BY_KEY)


def _by_key_and_pauses(s: Session) -> list[str]:
    """`_by_key`, and the operators' pause scopes, in one round trip."""
    return list(s.execute(_PG_BY_KEY_AND_PAUSES).one()[-1])


_SETTINGS = ("set_config('enable_bitmapscan', 'off', true), "
             "set_config('enable_seqscan', 'off', true), "
             "set_config('plan_cache_mode', 'force_custom_plan', true)")
_PG_BY_KEY = text(f"SELECT {_SETTINGS}")
_PG_BY_KEY_AND_PAUSES = text(f"SELECT {_SETTINGS}, ARRAY(SELECT scope FROM pauses)")


def _claimed(r: Any) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=r[0], enrollment_id=r[1], subscriber_id=r[2], sequence_key=r[3], seq_no=r[4],
        step_key=r[5], variant=r[6], nudge=r[7], due_at=as_utc(r[8]), attempts=r[9],
        email=r[10], name=r[11], timezone=r[12], enrolled_at=as_utc(r[13]),
        enrollment_state=r[14], unsubscribed=r[15] is not None,
        suppressed=r[16] is not None, offers_opt_out=r[17] is not None,
    )


class DueBatch:
    """Due deliveries held by one open transaction (see `DeliveryQueries.claim_batch`):
    read what deciding them needs, settle the ones that must not go, mark the rest
    `sending`. Everything commits together when the `claim_batch` block ends."""

    def __init__(self, store: DeliveryQueries, session: Session, rows: list[ClaimedDelivery],
                 worker: str, now: datetime, from_states: tuple[str, ...],
                 paused: frozenset[str] = frozenset()) -> None:
        self.rows = rows
        #: The operators' pause scopes as this transaction read them ('all', 'sequence:KEY').
        self.paused = paused
        self._store = store
        self._session = session
        self._worker = worker
        self._now = now
        self._from_states = from_states

    @property
    def kill_switch(self) -> bool:
        """All sending is paused: nothing was claimed."""
        return "all" in self.paused

    def kill_switch_now(self) -> bool:
        """Whether the kill switch is on now (it may have come on since the claim)."""
        return self._session.execute(
            select(Pause.scope).where(Pause.scope == "all")).first() is not None

    def histories(self) -> dict[int, list[Sent]]:
        """Every email that went out per enrollment of this batch (past its first)."""
        return self._store._histories(
            self._session, (c.enrollment_id for c in self.rows if c.seq_no > 1))

    def ownership(self) -> dict[int, set[str]]:
        return self._store._ownership(self._session, (c.subscriber_id for c in self.rows))

    def went_out_since(self, subscriber_ids: Iterable[int],
                       since: datetime) -> dict[int, list[datetime]]:
        """When each email to these subscribers went out (or started to) since `since`,
        from any sequence: what a daily limit counts (drip.daily_limit)."""
        ids = sorted(set(subscriber_ids))
        if not ids:
            return {}
        t = DELIVERIES
        at = func.coalesce(t.c.sent_at, t.c.sending_at)
        found: dict[int, list[datetime]] = {}
        for subscriber_id, moment in self._session.execute(
                select(t.c.subscriber_id, at).where(
                    self._store._ids_in(t.c.subscriber_id, ids),
                    or_(t.c.state == "sent", t.c.state == "sending", t.c.state == "unknown"),
                    at >= since)):
            found.setdefault(subscriber_id, []).append(as_utc(moment))
        return found

    def tags(self) -> dict[int, set[str]]:
        """Each subscriber's tags (goals and branches read them)."""
        return subscriber_tags(self._store, self._session, (c.subscriber_id for c in self.rows))

    def preferences(self) -> dict[int, SendPreference]:
        """The send preference of each subscriber of this batch who set one."""
        return send_preferences(self._store, self._session,
                                (c.subscriber_id for c in self.rows))

    def settle(self, outcomes: Sequence[Outcome], finished: Sequence[int] = (),
               moves: Sequence[Move] = ()) -> None:
        """Record the emails that will not go (cancelled, held, failed to render), and move
        the ones that go later instead (back to `scheduled` at their new slot)."""
        if outcomes or finished:
            self._store._record(self._session, outcomes, self._now, None, None, finished,
                                self._from_states)
        if moves:
            t = DELIVERIES
            self._session.connection().execute(
                update(t)
                .where(t.c.id == bindparam("b_id"),
                       or_(*(t.c.state == state for state in self._from_states)))
                .values(state="scheduled", due_at=bindparam("b_due"),
                        window_end_at=bindparam("b_end"), step_key=bindparam("b_step"),
                        variant=bindparam("b_variant"), claimed_by=None, lease_until=None),
                [{"b_id": m.delivery_id, "b_due": m.due_at, "b_end": m.window_end_at,
                  "b_step": m.step_key, "b_variant": m.variant} for m in moves],
            )

    def send(self, sending: Sequence[Sending], now: datetime, lease_until: datetime,
             batch_key: str | None = None, tests: Sequence[SplitSent] = ()) -> set[int]:
        """Mark these emails `sending`, exactly as decided, at `now` with a lease counted
        from then (on PostgreSQL a batch is claimed while the one before is still out, so
        a lease counted from the claim would be partly spent), under the provider batch
        key they go with, with the split-test variants they carry; the ids that were
        marked."""
        if not sending:
            return set()
        held = self._store._mark_sending(self._session, sending, self._worker, now,
                                         lease_until, _PG_SEND_LOCKED, self._from_states[0],
                                         batch_key)
        record_splits(self._session, self._store._insert,
                     [t for t in tests if t.delivery_id in held])
        return held
