"""Recording a purchase says whether it was new, and tags the buyer, on both databases."""

from __future__ import annotations

from drip.runtime import Drip
from drip.subscriptions import enroll


def test_a_new_order_is_new_once_and_tags_the_buyer(basic_drip: Drip) -> None:
    joined = enroll(basic_drip.store, basic_drip.library, email="ana@example.com",
                    sequence_key="basic", now=basic_drip.clock.now())
    def record() -> bool:
        return basic_drip.store.record_purchase(
            source="shop", order_id="1043", subscriber_id=joined.subscriber_id,
            product="offer-a", now=basic_drip.clock.now(), tags=["owns-offer-a"])

    assert record() is True
    assert record() is False
    assert basic_drip.store.ownership([joined.subscriber_id]) == {
        joined.subscriber_id: {"offer-a", "owns-offer-a"}}
