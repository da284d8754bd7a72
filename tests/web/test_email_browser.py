"""Every shipped email in headless Chromium at 360, 390 and 1200 px: no side-scrolling,
buttons at least 44 px tall, stacked on a phone and side by side on a desktop, the mobile
rules winning over the inlined styles, alt text on every image, and axe-core's serious
and critical checks on the weekly email and the letters. The screenshots in
docs/screenshots/ are made here.

One browser session renders all of them: each email is loaded once and measured at each
width (a resize re-runs the media queries), so the suite stays fast.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drip.message import Message
from drip.render import Letter, write_letter
from tests.support.chrome import (
    artifact,
    axe_violations,
    chrome,
    describe,
    resize,
    save_png,
)
from tests.support.emails import ROOT, Sample, sender, shipped_emails, weekly_emails

WIDTHS = (360, 390, 1200)
PHONES = (360, 390)
MIN_TAP = 44
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: (email, width, part, file in docs/screenshots): what a subscriber, or the coach, sees.
#: A weekly email is long: its top (what shows on opening it) and its end (checkpoint,
#: nudge, footer) are shown apart.
DOCS = (
    ("week-1-main-strength-assessment", 390, "top", "weekly-email-phone-top.png"),
    ("week-1-main-strength-assessment", 390, "end", "weekly-email-phone-end.png"),
    ("week-1-main-strength-assessment", 1200, "top", "weekly-email-desktop-top.png"),
    ("week-1-main-strength-assessment", 1200, "end", "weekly-email-desktop-end.png"),
    ("week-3-main+reminder-12-week-program", 390, "top", "no-answer-note-phone.png"),
    ("confirmation", 390, "page", "confirmation-phone.png"),
    ("confirmation", 1200, "page", "confirmation-desktop.png"),
    ("digest", 1200, "page", "digest-desktop.png"),
)
WEEKLY = "week-1-main-strength-assessment"
#: The shipped emails, and the weekly one with a logo in its header (which cannot load
#: here, so its alt text shows).
SAMPLES = [*shipped_emails(),
           *(Sample(f"{s.name}-logo", s.message, s.checkpoint, s.buttons) for s in
             weekly_emails(sender(brand_name="Dayna's Running Lab",
                                  logo_url="https://www.example.com/logo.png"))[:1])]
#: A picture wider than any phone, as a coach's Markdown ![...](...) would put in.
WIDE = ('<p><img src="data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27 '
        'width=%271400%27 height=%27300%27%3E%3Crect width=%271400%27 height=%27300%27 '
        'fill=%27%23b0412e%27/%3E%3C/svg%3E" alt="The bridge, from the side"></p>')
SAMPLES.append(Sample("wide-picture", Message(
    delivery_id=0, enrollment_id=0, sequence_key="x", step_key="x", variant="main",
    to_email="a@example.com", to_name="", from_email="coach@example.com", from_name="Dayna",
    content=write_letter(sender(), Letter(key="wide", subject="A picture", preheader="p",
                                          kicker="k", body_html=WIDE, body_text="",
                                          reason="r"))), None, ()))
NAMES = [s.name for s in SAMPLES]
#: The emails axe-core checks: the weekly one at each width, the letters on a phone.
AXE = (WEEKLY, "week-3-main+reminder-12-week-program", "confirmation", "digest")
CHECKPOINTED = [s.name for s in SAMPLES if s.checkpoint is not None]

MEASURE = """
const wanted = arguments[0];
const box = e => { const r = e.getBoundingClientRect();
                   return {x: r.x, y: r.y, width: r.width, height: r.height}; };
const card = document.querySelector('td.card');
return {
  viewport: window.innerWidth,
  scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
  card_padding: card ? parseFloat(getComputedStyle(card).paddingLeft) : null,
  buttons: wanted.map(url => Array.from(document.querySelectorAll('a'))
                                  .filter(a => a.getAttribute('href') === url).map(box)),
  styled: Array.from(document.querySelectorAll('a.button')).map(box),
  images: Array.from(document.images).map(i => i.getAttribute('alt')),
};
"""


def _write(tmp: Path, sample: Sample) -> str:
    path = tmp / f"{sample.name}.html"
    path.write_text(sample.html, encoding="utf-8")
    return path.as_uri()


def _screenshot(driver: Any, part: str, path: Path) -> Path:
    """The whole page, its first screen ("top"), or from the checkpoint down ("end")."""
    if part == "page":
        return save_png(driver, path)
    width, height = driver.execute_script(
        "return [window.innerWidth, document.documentElement.scrollHeight];")
    top = 0.0
    if part == "end":
        top = driver.execute_script(
            "const box = document.querySelector('td.checkpoint');"
            "return box ? box.getBoundingClientRect().top + window.scrollY - 24 : 0;")
    clip = {"x": 0, "y": top, "width": width, "height": min(height - top, 900), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": clip})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """{email name: {width: measurements}}, the docs' screenshots, and axe's findings on
    the weekly email at each width: all from one browser session."""
    tmp = tmp_path_factory.mktemp("emails")
    samples = {s.name: s for s in SAMPLES}
    found: dict[str, Any] = {"samples": samples, "axe": {}}
    shots: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for name, width, part, file in DOCS:
        shots.setdefault((name, width), []).append((part, file))
    with chrome(WIDTHS[0]) as driver:
        for sample in samples.values():
            driver.get(_write(tmp, sample))
            for width in WIDTHS:
                resize(driver, width)
                found.setdefault(sample.name, {})[width] = driver.execute_script(
                    MEASURE, list(sample.buttons))
                for part, file in shots.get((sample.name, width), []):
                    png = _screenshot(driver, part, artifact(f"email-{sample.name}-{width}-{part}"))
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(png, SCREENSHOTS / file)
                if sample.name in AXE and (sample.name == WEEKLY or width == 390):
                    found["axe"][sample.name, width] = axe_violations(driver)
            resize(driver, 390)
            if sample.name == WEEKLY:  # how the colours hold when the phone is in dark mode
                driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
                    "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
                shutil.copyfile(_screenshot(driver, "end", artifact("email-weekly-dark-390")),
                                SCREENSHOTS / "weekly-email-phone-dark-end.png")
                driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    yield found




@pytest.mark.parametrize("name", NAMES)
def test_no_email_scrolls_sideways(measured: dict[str, Any], name: str) -> None:
    for width in WIDTHS:
        page = measured[name][width]
        assert page["viewport"] == width
        assert page["scroll"] <= page["viewport"], f"{name} scrolls sideways at {width} px"


@pytest.mark.parametrize("name", NAMES)
def test_every_button_is_a_thumb_high(measured: dict[str, Any], name: str) -> None:
    sample: Sample = measured["samples"][name]
    for width in WIDTHS:
        page = measured[name][width]
        for url, boxes in zip(sample.buttons, page["buttons"], strict=True):
            assert len(boxes) == 1, f"{name} at {width} px: one button to {url}, not {boxes}"
            assert boxes[0]["height"] >= MIN_TAP, f"{name} at {width} px: {url} {boxes[0]}"
        assert len(page["styled"]) == len(sample.buttons), name
        assert all(b["height"] >= MIN_TAP for b in page["styled"]), (name, width)


@pytest.mark.parametrize("name", CHECKPOINTED)
def test_checkpoint_buttons_stack_on_a_phone_and_sit_side_by_side_on_a_desktop(
        measured: dict[str, Any], name: str) -> None:
    for width in WIDTHS:
        passed, not_yet = (boxes[0] for boxes in measured[name][width]["buttons"][:2])
        if width in PHONES:
            assert not_yet["y"] >= passed["y"] + passed["height"], (
                f"{name} at {width} px: 'Not yet' is not under 'Passed'")
            assert passed["width"] >= width * 0.7, f"{name} at {width} px: {passed}"
        else:
            assert abs(not_yet["y"] - passed["y"]) < 1, f"{name} at {width} px: not in a row"
            assert not_yet["x"] >= passed["x"] + passed["width"], name


@pytest.mark.parametrize("name", NAMES)
def test_the_phone_rules_win_over_the_inlined_styles(measured: dict[str, Any],
                                                     name: str) -> None:
    """css-inline writes the desktop padding into each element; the @media rules must
    still apply on a phone, or the card keeps 32 px a side at 360 px."""
    desktop = measured[name][1200]["card_padding"]
    assert desktop == 32
    for width in PHONES:
        assert measured[name][width]["card_padding"] <= 18, f"{name} at {width} px"


@pytest.mark.parametrize("name", NAMES)
def test_every_image_has_alt_text(measured: dict[str, Any], name: str) -> None:
    images = measured[name][390]["images"]
    assert all(alt and alt.strip() for alt in images), name
    if name.endswith("-logo"):
        assert images == ["Dayna's Running Lab"]
    if name == "wide-picture":
        assert images == ["The bridge, from the side"]


@pytest.mark.parametrize(("name", "width"), [(WEEKLY, w) for w in WIDTHS]
                         + [(name, 390) for name in AXE[1:]])
def test_axe_finds_nothing_serious(measured: dict[str, Any], name: str, width: int) -> None:
    violations = measured["axe"][name, width]
    assert violations == [], describe(violations)


def test_the_docs_screenshots_were_made_and_are_shown(measured: dict[str, Any]) -> None:
    guide = (ROOT / "docs" / "writing-sequences.md").read_text(encoding="utf-8")
    for file in [f for _, _, _, f in DOCS] + ["weekly-email-phone-dark-end.png"]:
        assert (SCREENSHOTS / file).stat().st_size > 10_000, file
        assert f"(screenshots/{file})" in guide, f"docs/writing-sequences.md does not show {file}"
