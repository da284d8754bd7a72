"""The database tables, as SQLAlchemy 2.x typed models. Only drip.store queries them.

Times are stored as UTC. SQLite gives them back naive; drip.clock.as_utc mends that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys
UTC = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTC, dict[str, Any]: JSON}


class Subscriber(Base):
    """A person, known by one normalised email address."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime]
    unsubscribed_at: Mapped[datetime | None]
    suppressed_at: Mapped[datetime | None]
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    offers_opt_out_at: Mapped[datetime | None]
    #: The subscriber's own choice on the preferences page (0009): "HH:MM" local, a weekday.
    send_time: Mapped[str | None] = mapped_column(String(5))
    send_weekday: Mapped[str | None] = mapped_column(String(10))


class Consent(Base):
    """Why we may email someone: one row per opt-in, purchase or import."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    sequence_key: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20))
    text_version: Mapped[str | None] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_consents_subscriber", "subscriber_id"),)


class Enrollment(Base):
    """One subscriber's journey through one sequence."""

    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    sequence_key: Mapped[str] = mapped_column(String(100))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20), default="active")
    source: Mapped[str] = mapped_column(String(20))
    enrolled_at: Mapped[datetime]
    paused_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("subscriber_id", "sequence_key", "cycle"),
        Index("ix_enrollments_state", "state", "sequence_key"),
    )


class Delivery(Base):
    """The outbox and the ledger: one row per email that is due or was sent.

    `seq_no` counts the emails of one enrollment; (enrollment, seq_no) is unique,
    so the same occurrence can never be planned twice.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    sequence_key: Mapped[str] = mapped_column(String(100))
    seq_no: Mapped[int] = mapped_column(Integer)
    step_key: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(40), default="main")
    nudge: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="scheduled")
    due_at: Mapped[datetime]
    window_end_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    #: The SendGrid request an `unknown` email went out in (0004): what to ask it about.
    batch_key: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("enrollment_id", "seq_no"),
        Index(
            "ix_deliveries_due",
            "due_at",
            postgresql_where=text("state = 'scheduled'"),
            sqlite_where=text("state = 'scheduled'"),
        ),
        # Partial indexes: a row version is indexed only where it is looked up (0003).
        Index(
            "ix_deliveries_state",
            "state",
            "lease_until",
            postgresql_where=text("state NOT IN ('scheduled', 'sent')"),
            sqlite_where=text("state NOT IN ('scheduled', 'sent')"),
        ),
        Index("ix_deliveries_subscriber", "subscriber_id"),
        Index(
            "ix_deliveries_unknown_batch",
            "batch_key",
            postgresql_where=text("state = 'unknown' AND batch_key IS NOT NULL"),
            sqlite_where=text("state = 'unknown' AND batch_key IS NOT NULL"),
        ),
        Index(
            "ix_deliveries_message_id",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
            sqlite_where=text("provider_message_id IS NOT NULL"),
        ),
    )


class Event(Base):
    """Something that happened to a delivery or subscriber, as a provider or drip reported it."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    email: Mapped[str | None] = mapped_column(String(320))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_events_delivery", "delivery_id"),
        Index("ix_events_subscriber", "subscriber_id"),
    )


class CheckpointAnswer(Base):
    """A subscriber's one-click answer to the checkpoint in one delivery."""

    __tablename__ = "checkpoint_answers"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), unique=True
    )
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(100))
    answer: Mapped[str] = mapped_column(String(20))
    answered_at: Mapped[datetime]

    __table_args__ = (Index("ix_checkpoint_answers_enrollment", "enrollment_id"),)


class Purchase(Base):
    """A product bought, from a shop webhook, Stripe or an import; idempotent on the order."""

    __tablename__ = "purchases"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(200))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    product: Mapped[str] = mapped_column(String(100))
    purchased_at: Mapped[datetime]
    payload: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("source", "order_id"),
        Index("ix_purchases_subscriber", "subscriber_id"),
    )


class Tag(Base):
    """A label on a subscriber, such as a product they own."""

    __tablename__ = "tags"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_tags_tag", "tag"),)


class Pause(Base):
    """A sending pause set by an operator: scope 'all' (the kill switch) or 'sequence:KEY'."""

    __tablename__ = "pauses"

    scope: Mapped[str] = mapped_column(String(120), primary_key=True)
    paused_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named lease: one holder at a time, until it expires (periodic jobs, SQLite scheduler)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class Heartbeat(Base):
    """The last tick of each scheduler process, so operators can see it is alive."""

    __tablename__ = "heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    beat_at: Mapped[datetime]
    started_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)


class SendBudget(Base):
    """A token bucket shared by every worker: how many emails may go out right now.

    Used only when DRIP_MAX_PER_SECOND is set (domain warm-up, provider plan limits).
    """

    __tablename__ = "send_budgets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime]


class Circuit(Base):
    """Whether a provider may be called: closed (normal), open (halted) or half-open (probing)."""

    __tablename__ = "circuits"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="closed")
    reason: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None]
    retry_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """A key another system (Zapier, Make) calls the API with. Only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell apart
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WebhookMessage(Base):
    """One outgoing webhook event, queued in the transaction of the change it reports and
    posted to every URL that wants it (DRIP_WEBHOOK_URLS, webhook_endpoints) until all
    accept it. `msg_id` never changes across retries."""

    __tablename__ = "webhook_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    subscriber_id: Mapped[int | None] = mapped_column(Id)  # no foreign key: kept as a log
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_messages_pending", "state", "subscriber_id", "id"),)


class WebhookEndpoint(Base):
    """A receiver added with `drip webhook add`: its URL, the events it wants (comma
    separated; empty: all) and the Standard Webhooks secret its posts are signed with."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    events: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


# --- experiments (0008): split tests, clicks, leaders (drip/experiments) -------------------


class DeliveryTest(Base):
    """The split-test variant one delivery carried (recorded as it is marked `sending`)."""

    __tablename__ = "delivery_tests"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    sequence_key: Mapped[str] = mapped_column(String(100))
    test_name: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(40))

    __table_args__ = (Index("ix_delivery_tests_test", "sequence_key", "test_name"),)


class Click(Base):
    """One request through the click redirect. `scanner` says why it is not counted (a
    link scanner's pattern); a person's clicks count once per link."""

    __tablename__ = "clicks"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    sequence_key: Mapped[str] = mapped_column(String(100))
    step_key: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    clicked_at: Mapped[datetime]
    scanner: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index("ix_clicks_delivery", "delivery_id", "clicked_at"),
        Index("ix_clicks_sequence", "sequence_key"),
    )


class SplitLeader(Base):
    """A split test's leader, sent to everyone after (`winner: auto`): the sequence's
    history of what it learned."""

    __tablename__ = "test_winners"

    sequence_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    test_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    variant: Mapped[str] = mapped_column(String(40))
    decided_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)
