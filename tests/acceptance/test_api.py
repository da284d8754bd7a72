"""The API (/api/v1) on `drip serve`'s app on loopback, with keys made by the real `drip
api-key` command: scopes, a revoked key, a missing key, RFC 9457 problems, and an OpenAPI
document that names exactly the routes there are and describes their answers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.routing import Mount, Route

from drip.web import create_app
from tests.acceptance.conftest import Run
from tests.conftest import FIXTURES
from tests.support.cli import Cli, cli_env
from tests.support.loopback import serving

CATALOG = "products:\n  - key: basic-program\n    name: Basic\n    sequence: basic\n"


@pytest.fixture
def sequences(tmp_path: Path) -> Path:
    folder = tmp_path / "sequences"
    shutil.copytree(FIXTURES / "basic" / "sequences", folder)
    (folder / "catalog.yaml").write_text(CATALOG)
    return folder


@pytest.fixture
def api_cli(tmp_path: Path, database_url: str, sequences: Path) -> Cli:
    return Cli(cli_env(tmp_path, database_url, DRIP_SEQUENCES_DIR=str(sequences)))


@pytest.fixture
def api(api_cli: Cli) -> Iterator[httpx.Client]:
    drip = api_cli.drip()
    try:
        with serving(create_app(drip)) as url, httpx.Client(base_url=f"{url}/api/v1",
                                                            timeout=10) as client:
            yield client
    finally:
        drip.close()


@pytest.fixture
def keys(api_cli: Cli, process_env: dict[str, str], sequences: Path) -> dict[str, str]:
    process_env["DRIP_SEQUENCES_DIR"] = str(sequences)  # for the tests' own `drip` processes
    made = {}
    for name, scopes in (("zapier", ("enroll", "read")), ("reader", ("read",)),
                         ("remover", ("unsubscribe",))):
        args = [a for s in scopes for a in ("--scope", s)]
        out = api_cli.json("api-key", "create", "--name", name, *args)
        assert (out["name"], out["scopes"]) == (name, list(scopes))
        made[name] = out["key"]
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def is_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["detail"]
    assert "Traceback" not in answer.text
    return body


def test_keys_scopes_and_problems(api: httpx.Client, keys: dict[str, str], drip_cli: Run,
                                  api_cli: Cli) -> None:
    ana = {"email": "ana@example.com", "name": "Ana", "sequence": "basic",
           "timezone": "Europe/London", "consent": True}
    is_problem(api.post("/enrollments", json=ana), 401)
    assert api.post("/enrollments", json=ana).headers["www-authenticate"] == "Bearer"
    is_problem(api.post("/enrollments", json=ana, headers=bearer("drip_forged")), 401)
    is_problem(api.post("/enrollments", json=ana, headers=bearer(keys["reader"])), 403)
    is_problem(api.post("/enrollments", json={**ana, "consent": False},
                        headers=bearer(keys["zapier"])), 400)
    is_problem(api.post("/enrollments", content=b"{", headers=bearer(keys["zapier"])), 400)
    # no silent UTC: a caller that leaves the zone out is told to send one (or "UTC")
    no_zone = api.post("/enrollments", json={k: v for k, v in ana.items() if k != "timezone"},
                       headers=bearer(keys["zapier"]))
    is_problem(no_zone, 400)
    assert "timezone is missing" in no_zone.json()["detail"]
    guessed = api.post("/enrollments", json={**ana, "timezone": "London"},
                       headers=bearer(keys["zapier"]))
    is_problem(guessed, 400)
    assert "Did you mean Europe/London?" in guessed.json()["detail"]
    assert api_cli.json("sends") == []  # nothing of the above changed anything

    made = api.post("/enrollments", json=ana, headers=bearer(keys["zapier"]))
    assert made.status_code == 201 and made.json()["created"] is True
    again = api.post("/enrollments", json=ana, headers=bearer(keys["zapier"]))
    assert again.status_code == 200 and again.json()["created"] is False
    consent = api_cli.json("subscriber", "ana@example.com")["consents"][0]
    assert (consent["source"], consent["details"]["api_key"]) == ("api", "zapier")

    journey = api.get("/subscribers/ana@example.com", headers=bearer(keys["reader"]))
    assert journey.status_code == 200
    assert journey.json()["enrollments"][0]["sequence"] == "basic"
    is_problem(api.get("/subscribers/nobody@example.com", headers=bearer(keys["reader"])), 404)
    is_problem(api.delete("/subscribers/ana@example.com", headers=bearer(keys["reader"])), 403)
    gone = api.delete("/subscribers/ana@example.com", headers=bearer(keys["remover"]))
    assert gone.json() == {"unsubscribed": True, "changed": True}
    back = api.post("/enrollments", json=ana, headers=bearer(keys["zapier"]))  # not re-enrolled
    assert (back.status_code, back.json()["state"]) == (200, "unsubscribed")

    drip_cli("api-key", "revoke", "reader", check=True)
    is_problem(api.get("/subscribers/ana@example.com", headers=bearer(keys["reader"])), 401)
    listed = json.loads(drip_cli("api-key", "list", "--json", check=True).stdout)
    assert [(k["name"], k["revoked_at"] is not None) for k in listed] == [
        ("zapier", False), ("reader", True), ("remover", False)]
    assert all(keys[k["name"]].startswith(k["prefix"]) for k in listed)
    assert drip_cli("api-key", "revoke", "reader").returncode == 3  # not an active key
    assert drip_cli("api-key", "create", "--name", "zapier", "--scope", "read").returncode == 4
    assert drip_cli("api-key", "create", "--name", "x", "--scope", "admin").returncode == 2
    is_problem(api.get("/nowhere"), 404)
    is_problem(api.put("/enrollments", json={}), 405)


def test_purchases_through_the_api(api: httpx.Client, keys: dict[str, str],
                                   api_cli: Cli) -> None:
    order = {"order_id": "zap-1", "email": "ben@example.com", "product": "basic-program"}
    first = api.post("/events/purchase", json=order, headers=bearer(keys["zapier"]))
    assert first.status_code == 201 and first.json()["enrolled_in"] == "basic"
    replay = api.post("/events/purchase", json=order, headers=bearer(keys["zapier"]))
    assert replay.status_code == 200 and replay.json()["recorded"] is False
    is_problem(api.post("/events/purchase", json={**order, "product": "nope"},
                        headers=bearer(keys["zapier"])), 400)
    is_problem(api.post("/events/purchase", json=order, headers=bearer(keys["remover"])), 403)
    assert len(api_cli.json("subscriber", "ben@example.com")["purchases"]) == 1


def test_the_openapi_document_matches_the_routes_and_the_answers(
        api: httpx.Client, api_cli: Cli, keys: dict[str, str]) -> None:
    document = api.get("/openapi.json").json()
    drip = api_cli.drip()
    try:
        [mount] = [r for r in create_app(drip).routes if isinstance(r, Mount)
                   and r.path == "/api/v1"]
    finally:
        drip.close()
    served = {(route.path, method.lower()) for route in mount.routes
              if isinstance(route, Route) for method in (route.methods or ()) if method != "HEAD"}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert served == documented

    def check(answer: httpx.Response, path: str, method: str) -> None:
        spec = document["paths"][path][method]["responses"][str(answer.status_code)]
        media = answer.headers["content-type"].split(";")[0]
        schema = spec["content"][media]["schema"]
        jsonschema.validate(answer.json(), {**schema, "components": document["components"]},
                            format_checker=jsonschema.FormatChecker())

    ana = {"email": "ana@example.com", "sequence": "basic", "timezone": "UTC", "consent": True}
    check(api.post("/enrollments", json=ana, headers=bearer(keys["zapier"])), "/enrollments",
          "post")
    check(api.post("/enrollments", json=ana), "/enrollments", "post")
    check(api.get("/subscribers/ana@example.com", headers=bearer(keys["reader"])),
          "/subscribers/{email}", "get")
    check(api.delete("/subscribers/ana@example.com", headers=bearer(keys["remover"])),
          "/subscribers/{email}", "delete")
    check(api.post("/events/purchase", json={"order_id": "1", "email": "c@example.com",
                                             "product": "basic-program"},
                   headers=bearer(keys["zapier"])), "/events/purchase", "post")
