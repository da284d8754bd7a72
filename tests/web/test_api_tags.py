"""POST /api/v1/enrollments with the optional `tags` field: set on the subscriber with the
enrollment; a bad tag is a problem document that names the field, and changes nothing."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from drip import api_keys
from drip.errors import NotFound
from drip.runtime import Drip


def test_enrollment_tags(web_drip: Drip, client: TestClient) -> None:
    key, _ = api_keys.create(web_drip.store, "zap", api_keys.SCOPES, web_drip.clock.now())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = {"email": "ana@example.com", "sequence": "pht-7-week", "consent": True,
            "timezone": "UTC", "tags": ["Struggling", "from-zapier"]}
    bad = client.post("/api/v1/enrollments", headers=headers,
                      content=json.dumps({**body, "tags": ["ok", "no good!"]}))
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert "tags: 'no good!' is not a tag" in bad.json()["detail"]
    try:
        web_drip.store.subscriber_by_email("ana@example.com")
        raise AssertionError("a bad tag enrolled someone")
    except NotFound:
        pass
    assert client.post("/api/v1/enrollments", headers=headers,
                       content=json.dumps({**body, "tags": "struggling"})).status_code == 201
    done = client.post("/api/v1/enrollments", headers=headers, content=json.dumps(body))
    assert done.status_code == 200, done.text
    ana = web_drip.store.subscriber_by_email("ana@example.com")
    assert web_drip.store.tags_of(ana.id) == ["from-zapier", "struggling"]
