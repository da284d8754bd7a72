"""The click redirect over real HTTP on loopback (uvicorn in a thread, SQLite and PostgreSQL):
a person's click is counted once and sent on; scanners are not counted; a tampered link is
a clear 404 page; the redirect only goes where the email's own files point."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from drip.clock import FixedClock
from drip.links import link_id
from drip.runtime import Drip
from drip.subscriptions import enroll
from tests.conftest import FIXTURES
from tests.web.conftest import serving, web_settings

GUIDE = "https://www.example.com/guide"
OFFER = ("https://www.example.com/a?utm_source=drip&utm_medium=email&utm_campaign=basic"
         "&utm_content=week-1")
REDIRECT = re.compile(r'href="(https://drip\.test/r/[^"]+)"')


@pytest.fixture
def basic_web(tmp_path: Path, database_url: str, clock: FixedClock,
              sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[Drip]:
    settings = web_settings(tmp_path, database_url, sendgrid_key,
                            sequences_dir=FIXTURES / "basic" / "sequences",
                            templates_dir=FIXTURES / "basic" / "templates")
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def live(basic_web: Drip) -> Iterator[httpx.Client]:
    with serving(basic_web) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def week_one(drip: Drip, address: str = "ana@example.com") -> tuple[int, dict[str, str]]:
    """Send week 1 to `address`; its delivery id, and each link's redirect path by address."""
    enroll(drip.store, drip.library, email=address, sequence_key="basic", name="Ana",
           now=drip.clock.now())
    drip.dispatcher().run_once()
    (row,) = [r for r in drip.store.deliveries(email=address) if r.step_key == "week-1"]
    eml = next(p for p in sorted(drip.settings.outbox_dir.glob("*.eml"))
               if address in p.read_text(errors="replace"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    # the footer is untouched: one-click unsubscribe and the postal address
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://drip.test/u/" in html and drip.settings.postal_address in text
    assert GUIDE not in html and "www.example.com/a" not in html  # only through the redirect
    links = {}
    by_id = {link_id(url): url for url in (GUIDE, OFFER)}
    for found in REDIRECT.findall(html):
        path = found.removeprefix("https://drip.test")
        assert path in text  # the plain-text part carries the same redirect
        assert len(found) < 100  # short enough to read in plain text
        values = drip.links.signer.read("click", path.removeprefix("/r/"))
        assert values[0] == row.id
        links[by_id[str(values[1])]] = path
    assert set(links) == {GUIDE, OFFER}
    return row.id, links


def people(drip: Drip, url: str) -> int:
    return next((c.people for c in drip.store.link_clicks("basic") if c.url == url), 0)


def scanner_hits(drip: Drip, url: str) -> int:
    return next((c.scanner_hits for c in drip.store.link_clicks("basic") if c.url == url), 0)


def test_a_click_is_counted_once_and_sent_on(basic_web: Drip, live: httpx.Client,
                                              clock: FixedClock) -> None:
    _, links = week_one(basic_web)
    clock.advance(minutes=3)
    answer = live.get(links[GUIDE])
    assert answer.status_code == 302 and answer.headers["location"] == GUIDE
    clock.advance(minutes=1)
    answer = live.get(links[OFFER])
    assert answer.status_code == 302 and answer.headers["location"] == OFFER
    clock.advance(hours=2)
    assert live.get(links[GUIDE]).headers["location"] == GUIDE  # again: still once
    assert people(basic_web, GUIDE) == 1 and people(basic_web, OFFER) == 1
    assert scanner_hits(basic_web, GUIDE) == 0


def test_scanners_are_sent_on_but_not_counted(basic_web: Drip, live: httpx.Client,
                                              clock: FixedClock) -> None:
    _, links = week_one(basic_web)
    # on arrival, a security gateway opens the link within seconds of delivery
    answer = live.get(links[GUIDE])
    assert answer.status_code == 302 and answer.headers["location"] == GUIDE
    assert people(basic_web, GUIDE) == 0 and scanner_hits(basic_web, GUIDE) == 1
    # a HEAD request, any time: answered, never recorded
    clock.advance(minutes=10)
    head = live.head(links[OFFER])
    assert head.status_code == 302 and head.headers["location"] == OFFER
    assert people(basic_web, OFFER) == 0 and scanner_hits(basic_web, OFFER) == 0
    # every link of the email hit in the same second
    clock.advance(minutes=10)
    assert live.get(links[GUIDE]).status_code == 302
    assert live.get(links[OFFER]).status_code == 302
    assert people(basic_web, GUIDE) == 0 and people(basic_web, OFFER) == 0
    assert scanner_hits(basic_web, OFFER) == 1


@pytest.mark.parametrize("tamper", ["flip", "cut", "garbage", "huge", "other-purpose"])
def test_a_tampered_link_is_a_clear_404_page(basic_web: Drip, live: httpx.Client,
                                             clock: FixedClock, tamper: str) -> None:
    delivery_id, links = week_one(basic_web)
    clock.advance(minutes=5)
    token = links[GUIDE].removeprefix("/r/")
    changed = {
        "flip": token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:],
        "cut": token[: len(token) // 2],
        "garbage": "not-a-token",
        "huge": "x" * 20_000,
        "other-purpose": basic_web.links.signer.make("checkpoint", delivery_id),
    }[tamper]
    answer = live.get(f"/r/{changed}")
    assert answer.status_code == 404
    assert "text/html" in answer.headers["content-type"]
    assert "This link is not valid" in answer.text
    assert "location" not in answer.headers
    assert people(basic_web, GUIDE) == 0 and scanner_hits(basic_web, GUIDE) == 0


@pytest.mark.parametrize("target", ["https://evil.example/phish", "https://www.example.com/a",
                                    "javascript:alert(1)", "//evil.example"])
def test_the_redirect_only_goes_where_the_email_points(basic_web: Drip, live: httpx.Client,
                                                       clock: FixedClock, target: str) -> None:
    """Even a link signed with drip's own key (the secret leaked, or a bug) cannot send a
    reader anywhere the email does not name: not elsewhere, not to the offer without the
    email's own address for it."""
    delivery_id, _ = week_one(basic_web)
    clock.advance(minutes=5)
    forged = basic_web.links.click(delivery_id, target).removeprefix("https://drip.test")
    answer = live.get(forged)
    assert answer.status_code == 404 and "location" not in answer.headers
    assert basic_web.store.link_clicks("basic") == []


def test_a_link_of_an_email_that_is_gone_is_a_404(basic_web: Drip, live: httpx.Client) -> None:
    forged = basic_web.links.click(99_999, GUIDE).removeprefix("https://drip.test")
    answer = live.get(forged)
    assert answer.status_code == 404 and "location" not in answer.headers


@pytest.fixture
def split_web(tmp_path: Path, database_url: str, clock: FixedClock,
              sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[Drip]:
    settings = web_settings(tmp_path, database_url, sendgrid_key,
                            sequences_dir=FIXTURES / "experiments" / "sequences",
                            templates_dir=FIXTURES / "experiments" / "templates")
    instance = Drip.from_settings(settings, clock)
    try:
        yield instance
    finally:
        instance.close()


def test_a_variants_own_link_leads_where_that_variant_points(split_web: Drip,
                                                             clock: FixedClock) -> None:
    """Variant B's template has a link the step's own email lacks: its readers are sent on
    to it, and nobody else's link can be made to point there."""
    for n in range(8):
        enroll(split_web.store, split_web.library, email=f"r{n}@example.com",
               sequence_key="split", now=clock.now())
    split_web.dispatcher().run_once()
    video = "https://www.example.com/video"
    tokens: dict[bool, list[tuple[int, str]]] = {True: [], False: []}
    for eml in sorted(split_web.settings.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        html_part = message.get_body(("html",))
        assert html_part is not None
        paths = [u.removeprefix("https://drip.test") for u in REDIRECT.findall(
            html_part.get_content())]
        read = {str(split_web.links.signer.read("click", p.removeprefix("/r/"))[1]): p
                for p in paths}
        read = {url: read[link_id(url)] for url in (video, GUIDE) if link_id(url) in read}
        delivery_id = int(split_web.links.signer.read("click", paths[0].removeprefix("/r/"))[0])
        is_b = str(message["Subject"]).startswith("Your first week")
        assert (video in read) == is_b
        tokens[is_b].append((delivery_id, read.get(video, "")))
    assert tokens[True] and tokens[False]  # eight people: both variants went out
    clock.advance(minutes=5)
    with serving(split_web) as url, httpx.Client(base_url=url, timeout=10) as client:
        _, path = tokens[True][0]
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["location"] == video
        a_delivery, _ = tokens[False][0]
        forged = split_web.links.click(a_delivery, video).removeprefix("https://drip.test")
        assert client.get(forged).status_code == 404
    (counted,) = split_web.store.link_clicks("split")
    assert (counted.url, counted.people) == (video, 1)


@pytest.mark.parametrize("values", [[10**30, GUIDE], [-1, GUIDE], [True, GUIDE], [1],
                                    [1, GUIDE, 3], ["1", GUIDE], [1, 2]])
def test_a_click_token_of_another_shape_is_a_404(basic_web: Drip, live: httpx.Client,
                                                 values: list[object]) -> None:
    """Even signed with drip's key, a token that does not carry (delivery id, address) is a
    404 page, never a 500 (a huge id would overflow PostgreSQL's bigint)."""
    week_one(basic_web)
    token = basic_web.links.signer.make("click", *values)  # type: ignore[arg-type]
    answer = live.get(f"/r/{token}")
    assert answer.status_code == 404 and "location" not in answer.headers
