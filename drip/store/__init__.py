"""The store: every query drip makes, as named methods. Nothing else talks to the database.

Each public method is one transaction and takes and returns plain values and
frozen dataclasses, never ORM objects, so the core stays free of I/O. Queries
are grouped by concern in the modules of this package; `Store` is all of them.
"""

from __future__ import annotations

from drip.store._base import (
    DELIVERIES,
    FINAL_STATES,
    ClaimedDelivery,
    ConsentRecord,
    DeliveryRow,
    DeliveryState,
    EnrollOutcome,
    MissedWindow,
    Move,
    NextSteps,
    Outcome,
    PlannedDelivery,
    Recorded,
    Sending,
    StoreBase,
    WentOut,
)
from drip.store.api_keys import ApiKeyQueries, ApiKeyRow
from drip.store.checkpoints import AnsweredDelivery, CheckpointQueries
from drip.store.circuits import CircuitQueries, CircuitRow
from drip.store.clicks import ClickedDelivery, ClickQueries, LinkClicks
from drip.store.deliveries import DeliveryQueries, DueBatch
from drip.store.digest import DigestQueries, EnrollmentRow, PurchaseRow
from drip.store.events import EventQueries
from drip.store.experiments import (
    EnrollmentBought,
    ExperimentQueries,
    LeaderRow,
    SplitSent,
    VariantCount,
)
from drip.store.lifecycle import LifecycleQueries, PendingDelivery, SubscriberRow
from drip.store.liveness import LivenessQueries
from drip.store.metrics import MetricsQueries, MetricsSnapshot
from drip.store.operations import (
    ConsentRow,
    HeartbeatRow,
    ImportPerson,
    ImportResult,
    NudgeCounts,
    OperationQueries,
    Overview,
    SendFilter,
    SendRow,
    StateCount,
    StepCounts,
    Timeline,
)
from drip.store.optins import OptinQueries, OptinRequest
from drip.store.positions import EnrollmentPosition, PositionQueries
from drip.store.preferences import PreferenceQueries, PreferenceRow, Upcoming
from drip.store.purchases import PurchaseQueries
from drip.store.reports import ReportQueries
from drip.store.subscribers import SubscriberQueries
from drip.store.tags import TagQueries
from drip.store.throttle import ThrottleQueries
from drip.store.unknowns import Settled, UnknownBatch, UnknownQueries
from drip.store.webhooks import WebhookEndpointRow, WebhookQueries, WebhookRow


class Store(
    SubscriberQueries,
    ApiKeyQueries,
    DeliveryQueries,
    CircuitQueries,
    CheckpointQueries,
    ClickQueries,
    ExperimentQueries,
    DigestQueries,
    LifecycleQueries,
    LivenessQueries,
    MetricsQueries,
    PositionQueries,
    OperationQueries,
    PurchaseQueries,
    PreferenceQueries,
    TagQueries,
    EventQueries,
    OptinQueries,
    ReportQueries,
    ThrottleQueries,
    UnknownQueries,
    WebhookQueries,
    StoreBase,
):
    """All of drip's queries. Construct it with an Engine; share it within a process."""


__all__ = [
    "DELIVERIES",
    "FINAL_STATES",
    "AnsweredDelivery",
    "ApiKeyRow",
    "CircuitRow",
    "ClaimedDelivery",
    "ClickedDelivery",
    "ConsentRecord",
    "ConsentRow",
    "DeliveryRow",
    "DeliveryState",
    "DueBatch",
    "EnrollOutcome",
    "EnrollmentBought",
    "EnrollmentPosition",
    "EnrollmentRow",
    "HeartbeatRow",
    "ImportPerson",
    "ImportResult",
    "LeaderRow",
    "LinkClicks",
    "MetricsSnapshot",
    "MissedWindow",
    "Move",
    "NextSteps",
    "NudgeCounts",
    "OptinRequest",
    "Outcome",
    "Overview",
    "PendingDelivery",
    "PlannedDelivery",
    "PreferenceRow",
    "PurchaseRow",
    "Recorded",
    "SendFilter",
    "SendRow",
    "Sending",
    "Settled",
    "SplitSent",
    "StateCount",
    "StepCounts",
    "Store",
    "SubscriberRow",
    "Timeline",
    "UnknownBatch",
    "Upcoming",
    "VariantCount",
    "WebhookEndpointRow",
    "WebhookRow",
    "WentOut",
]
