"""Where each unfinished enrollment stands in its sequence: for lint's versioning check."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import ConfigError
from drip.models import Delivery, Enrollment
from drip.store._base import StoreBase

#: Enrollments that are still under way, so a removed step would strand them.
UNDER_WAY = ("active", "paused", "suppressed")
#: Deliveries that have not gone out yet.
WAITING = ("scheduled", "claimed", "sending", "held")


@dataclass(frozen=True)
class EnrollmentPosition:
    """The step an enrollment last received and the step it is due next (None: none)."""

    enrollment_id: int
    sequence_key: str
    last_step_key: str | None
    next_step_key: str | None


class PositionQueries(StoreBase):
    """Read-only: the positions of enrollments that are under way."""

    def enrollment_positions(self) -> list[EnrollmentPosition]:
        """Every enrollment under way with its last sent and next waiting step.

        Raises ConfigError when the database cannot be read (down, or never migrated)."""
        last_seq = (
            select(Delivery.enrollment_id, func.max(Delivery.seq_no).label("seq_no"))
            .where(Delivery.state == "sent")
            .group_by(Delivery.enrollment_id)
            .subquery()
        )
        last = (
            select(Delivery.enrollment_id, Delivery.step_key)
            .join(last_seq, (last_seq.c.enrollment_id == Delivery.enrollment_id)
                  & (last_seq.c.seq_no == Delivery.seq_no))
            .subquery()
        )
        waiting = (
            select(Delivery.enrollment_id, func.min(Delivery.step_key).label("step_key"))
            .where(Delivery.state.in_(WAITING))
            .group_by(Delivery.enrollment_id)
            .subquery()
        )
        query = (
            select(Enrollment.id, Enrollment.sequence_key, last.c.step_key, waiting.c.step_key)
            .outerjoin(last, last.c.enrollment_id == Enrollment.id)
            .outerjoin(waiting, waiting.c.enrollment_id == Enrollment.id)
            .where(Enrollment.state.in_(UNDER_WAY))
            .order_by(Enrollment.id)
        )
        try:
            with self._session() as s:
                rows = s.execute(query).all()
        except SQLAlchemyError as exc:
            raise ConfigError(
                f"The database cannot be read ({type(exc).__name__}); check DRIP_DATABASE_URL "
                "and run `drip db upgrade`."
            ) from None
        return [EnrollmentPosition(r[0], r[1], r[2], r[3]) for r in rows]
