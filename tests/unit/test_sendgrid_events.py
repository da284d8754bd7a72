"""SendGrid's event JSON onto drip's closed vocabulary, and the opt-in rate limit (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drip.errors import InvalidInput
from drip.providers.sendgrid import parse_events
from drip.web.limits import RateLimiter

AT = 1772452800


def one(**item: object) -> dict[str, object]:
    return {"email": "ana@example.com", "timestamp": AT, "sg_event_id": "e1", **item}


@pytest.mark.parametrize("item,kind", [
    (one(event="processed"), "processed"), (one(event="delivered"), "delivered"),
    (one(event="deferred"), "deferred"), (one(event="bounce", type="bounce"), "bounced"),
    (one(event="bounce", type="blocked"), "deferred"), (one(event="bounce"), "bounced"),
    (one(event="dropped", reason="Bounced Address"), "rejected"),
    (one(event="dropped", reason="Invalid"), "rejected"),
    (one(event="dropped", reason="Spam Reporting Address"), "rejected"),
    (one(event="dropped", reason="Unsubscribed Address"), "dropped"),
    (one(event="spamreport"), "complained"), (one(event="unsubscribe"), "unsubscribed"),
    (one(event="group_unsubscribe"), "unsubscribed"), (one(event="open"), "opened"),
    (one(event="click"), "clicked"), (one(event="group_resubscribe"), "other"),
    (one(event="something-new"), "other"),
])
def test_event_kinds(item: dict[str, object], kind: str) -> None:
    (event,) = parse_events([item])
    assert event.kind == kind
    assert event.occurred_at == datetime.fromtimestamp(AT, UTC)


def test_custom_args_name_the_delivery() -> None:
    parsed = parse_events([one(event="open", delivery_id="42", enrollment_id="7"),
                           one(event="open", delivery_id="abc"), one(event="open",
                                                                     delivery_id=42),
                           one(event="open", delivery_id="99999999999999999999"),
                           one(event="open")])
    assert [e.delivery_id for e in parsed] == [42, None, None, None, None]


def test_events_without_an_id_get_a_stable_one_and_text_is_cleaned() -> None:
    item = {"event": "open", "email": "a\x00b@example.com", "timestamp": AT,
            "reason": "x\x00y"}
    first, second = parse_events([item, dict(item)])
    assert first.provider_event_id == second.provider_event_id
    assert first.provider_event_id.startswith("sha256:")
    assert "\x00" not in first.email + first.detail


@pytest.mark.parametrize("data", [{}, "x", [1], [{"event": "open"}],
                                  [one(event="open", timestamp="soon")],
                                  [one(event="open", timestamp=-1)],
                                  [one(event="open", timestamp=True)],
                                  [one(event=None)], [one(event="open", email=3)]])
def test_malformed_events_are_invalid_input(data: object) -> None:
    with pytest.raises(InvalidInput):
        parse_events(data)


def test_rate_limiter_counts_per_key_within_the_window() -> None:
    limiter = RateLimiter(2, window=60)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", 2)
    assert not limiter.allow("a", 59)
    assert limiter.allow("a", 60.5)


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(1, window=10, max_keys=3)
    for i in range(10):
        assert limiter.allow(f"ip{i}", float(i))
    assert len(limiter._hits) <= 3
