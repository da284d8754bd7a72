"""The API under generated input (hypothesis), with a key of every scope: never a 500,
always a problem document when it is not a success."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import example, given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from drip import api_keys
from drip.runtime import Drip
from tests.web.test_fuzz import FUZZ, bodies, json_values, maybe, no_server_error, orders

enrollments = st.fixed_dictionaries({}, optional={
    "email": maybe, "sequence": st.just("pht-7-week") | maybe, "name": maybe,
    "timezone": maybe, "consent": st.just(True) | json_values,
    "tags": st.lists(st.sampled_from(["struggling", "Bad Tag!", ""]) | maybe, max_size=3)
    | json_values}) | json_values


def key_for(drip: Drip) -> dict[str, str]:
    if not drip.store.api_keys():
        key, _ = api_keys.create(drip.store, "fuzz", api_keys.SCOPES, drip.clock.now())
        drip.__dict__["_fuzz_key"] = key
    return {"Authorization": f"Bearer {drip.__dict__['_fuzz_key']}"}


def is_problem_or_success(answer: Any) -> None:
    no_server_error(answer)
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"


@FUZZ
@given(data=enrollments, raw=bodies)
def test_enrollments_never_fail(web_drip: Drip, client: TestClient, data: Any,
                                raw: bytes) -> None:
    headers = key_for(web_drip)
    for body in (json.dumps(data).encode(), raw):
        is_problem_or_success(client.post("/api/v1/enrollments", content=body,
                                          headers=headers))


@FUZZ
@given(order=orders | json_values, email=st.text(max_size=40))
@example(order={}, email="\n0")  # a line break in the path once fell through to HTML
def test_purchases_and_look_ups_never_fail(web_drip: Drip, client: TestClient, order: Any,
                                           email: str) -> None:
    headers = key_for(web_drip)
    is_problem_or_success(client.post("/api/v1/events/purchase",
                                      content=json.dumps(order).encode(), headers=headers))
    path = "/api/v1/subscribers/" + quote(email, safe="@")
    is_problem_or_success(client.get(path, headers=headers))
    is_problem_or_success(client.delete(path, headers=headers))
