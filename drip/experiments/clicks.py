"""Links through the signed click redirect, and following a click.

Every offer and program link (each http(s) address in an email's HTML) becomes a
per-recipient placeholder, filled with /r/{token}: the token signs the email's delivery and
the address's fingerprint (drip.links.link_id). Following it records the click and
redirects to the address with that fingerprint among those the email itself (its sequence,
templates and offers) names, so the redirect is never open.

A link scanner is not a person: a HEAD request, a click within SCANNER_GRACE of the email
going out, and clicks on different links of one email within a second of each other
(drip.store.clicks.BURST) are recorded as the scanner's and not counted. A person counts
once per link.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from drip.errors import DripError, NotFound
from drip.links import Links, link_id
from drip.message import Content
from drip.render import Renderer
from drip.store import ClickedDelivery, Store

#: A click this soon after the email went out is a scanner opening it on arrival.
SCANNER_GRACE = timedelta(seconds=10)
_HREF = re.compile(r'href="(https?://[^"]+)"')
_TEXT_URL = re.compile(r"https?://[^\s()<>\"]+")
PREFIX = "click_"


@dataclass(frozen=True)
class Tracked:
    """An email's content with each link as a placeholder, and the links in their order."""

    content: Content
    urls: tuple[str, ...]


def placeholder_name(index: int) -> str:
    """click_a, click_b, ... click_z, click_ba: placeholders are lower-case letters only."""
    letters = ""
    while True:
        index, rest = divmod(index, 26)
        letters = chr(ord("a") + rest) + letters
        if index == 0:
            return PREFIX + letters


def track(content: Content) -> Tracked:
    """`content` with every http(s) link in its HTML (and the same address in its text)
    replaced by a click placeholder."""
    urls: list[str] = []
    for match in _HREF.finditer(content.html):
        url = htmllib.unescape(match.group(1))
        if url not in urls:
            urls.append(url)
    if not urls:
        return Tracked(content, ())
    names = {url: placeholder_name(index) for index, url in enumerate(urls)}

    def in_html(match: re.Match[str]) -> str:
        return f'href="%%{names[htmllib.unescape(match.group(1))]}%%"'

    def in_text(match: re.Match[str]) -> str:
        name = names.get(match.group(0))
        return f"%%{name}%%" if name else match.group(0)

    return Tracked(replace(content, html=_HREF.sub(in_html, content.html),
                           text=_TEXT_URL.sub(in_text, content.text)), tuple(urls))


class LinkTracker:
    """`track`, once per group's content (content is shared by every recipient of a group)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Tracked] = {}

    def track(self, content: Content) -> Tracked:
        key = (content.key, content.content_hash)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = track(content)
        return found


def click_values(links: Links, delivery_id: int, urls: Sequence[str]) -> dict[str, str]:
    """Each link placeholder's value for one email: its signed redirect."""
    return {placeholder_name(index): links.click(delivery_id, url)
            for index, url in enumerate(urls)}


def scanner_reason(*, head: bool, sent_at: datetime | None, now: datetime) -> str | None:
    """Why a request is a link scanner's rather than a person's, if its shape says so."""
    if head:
        return "head"
    if sent_at is not None and now - sent_at < SCANNER_GRACE:
        return "on arrival"
    return None


def follow(store: Store, renderer: Renderer, links: Links, token: str, now: datetime, *,
           head: bool = False) -> str:
    """The address a click leads to, once the click is recorded (a HEAD request is answered
    the same but never recorded). NotFound for a forged, altered or cut link, or an address
    the email does not name."""
    try:
        values = links.signer.read("click", token)
    except DripError:
        raise NotFound("This link is not valid; it may have been cut short.") from None
    if (len(values) != 2 or not isinstance(values[0], int) or isinstance(values[0], bool)
            or not 0 < values[0] < 2**63 or not isinstance(values[1], str)):
        raise NotFound("This link is not valid.")
    delivery_id, fingerprint = values[0], values[1]
    delivery = store.clicked_delivery(delivery_id)
    url = next((u for u in (allowed_urls(renderer, delivery) if delivery else ())
                if link_id(u) == fingerprint), None)
    if delivery is None or url is None:
        raise NotFound("This link no longer leads anywhere in the program.")
    if not head:
        store.record_click(delivery, url, now,
                           scanner_reason(head=head, sent_at=delivery.sent_at, now=now))
    return url


def allowed_urls(renderer: Renderer, delivery: ClickedDelivery) -> frozenset[str]:
    """The addresses the delivery's email names, as its files render it now (its split-test
    variant's, and the step's own in case the variant has since been taken out)."""
    found: set[str] = set()
    for test_variant in {delivery.test_variant, None}:
        try:
            content = renderer.content(delivery.sequence_key, delivery.step_key,
                                       delivery.variant, delivery.nudge,
                                       test_variant=test_variant)
        except (DripError, KeyError):  # the step, variant or sequence is gone from the files
            continue
        found.update(track(content).urls)
    return frozenset(found)

