"""The HTML of every shipped email, read as Gmail and Outlook would: tables for layout,
Outlook's fixed-width ghost table, phone rules the inlined styles cannot beat, dark-mode
colours, a hidden preheader; the letterhead from settings; the confirmation and the
digest in the same layout, and the footer the law asks for where a list is involved."""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drip.errors import ConfigError
from drip.message import fill, recipient_values, to_mime
from drip.providers.outbox import OutboxProvider
from drip.render import Renderer
from drip.samples import SAMPLE_SUBSCRIBERS, sample_values, send_test
from drip.settings import load_settings
from tests.support.emails import (
    CONFIRM_URL,
    LINKS,
    POSTAL,
    ROOT,
    Sample,
    confirmation_email,
    digest_email,
    library,
    sender,
    shipped_emails,
    weekly_emails,
)

SAMPLES = shipped_emails()
WEEKLY = [s for s in SAMPLES if s.name not in ("confirmation", "digest")]


def _at_rule(html: str, head: str) -> str:
    """The body of the first @media block whose condition starts with `head`."""
    start = html.index(f"@media {head}")
    depth, i = 0, html.index("{", start)
    for j in range(i, len(html)):
        depth += {"{": 1, "}": -1}.get(html[j], 0)
        if depth == 0:
            return html[i + 1:j]
    raise AssertionError(f"@media {head} is never closed")


def _declarations(block: str) -> list[str]:
    return [d.strip() for rule in re.findall(r"\{([^{}]*)\}", block)
            for d in rule.split(";") if d.strip()]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_every_table_is_presentation_and_outlook_gets_a_fixed_width(sample: Sample) -> None:
    html = sample.html
    tables = re.findall(r"<table\b[^>]*>", html)
    assert len(tables) >= 3
    assert all('role="presentation"' in t for t in tables), [
        t for t in tables if 'role="presentation"' not in t]
    assert '<!--[if mso]><table role="presentation" width="600"' in html
    assert "<![endif]-->" in html.split('class="container"')[0]
    # Outlook paints a button from its cell's bgcolor (it ignores the link's padding)
    cells = re.findall(r'<td class="button-cell[^>]*>', html)
    assert len(cells) == len(sample.buttons)
    assert all(re.search(r'bgcolor="#[0-9a-f]{6}"', cell) for cell in cells), cells
    assert "<div" not in html.split("<body")[1].replace('<div class="preheader"', "").replace(
        '<div role="article"', "").replace('<div class="gap"', ""), "layout <div>s"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_the_phone_and_dark_mode_rules_all_carry_important(sample: Sample) -> None:
    """css-inline writes each property into the element's style attribute; a rule in a
    <style> block beats that only with !important."""
    for head in ("screen and (max-width: 620px)", "(prefers-color-scheme: dark)"):
        declarations = _declarations(_at_rule(sample.html, head))
        assert len(declarations) >= 8, head
        assert all(d.endswith("!important") for d in declarations), [
            d for d in declarations if not d.endswith("!important")]
    assert '<meta name="color-scheme" content="light dark">' in sample.html


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_the_preheader_is_hidden_and_comes_first(sample: Sample) -> None:
    body = sample.html.split("<body", 1)[1]
    hidden = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', body)
    assert hidden is not None
    assert "display: none" in hidden.group(1) and "mso-hide: all" in hidden.group(1)
    assert htmllib.unescape(hidden.group(2)).startswith(sample.message.content.preheader)
    assert sample.message.content.preheader.strip()
    assert body.index('class="preheader"') < body.index('class="card"')


@pytest.mark.parametrize("sample", WEEKLY, ids=lambda s: s.name)
def test_every_weekly_email_keeps_its_footer_and_one_click_unsubscribe(sample: Sample) -> None:
    values = sample.message.values
    for part in (sample.html, sample.text):
        assert values["unsubscribe_url"] in part and values["pause_url"] in part
        assert POSTAL in part.replace("&#39;", "'")
    assert f'<a href="{values["unsubscribe_url"]}"' in sample.html
    mime = to_mime(sample.message, sent_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime["List-Unsubscribe"] == f"<{values['unsubscribe_url']}>"
    parts = {p.get_content_type(): p.get_content() for p in mime.walk()
             if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Hi Alexandra," in parts["text/plain"] and "Hi Alexandra," in parts["text/html"]


def test_each_recipient_gets_their_own_name_and_links() -> None:
    sample = weekly_emails()[0]
    sequence = library().sequence("pht-7-week")
    seen = []
    for subscriber in SAMPLE_SUBSCRIBERS:
        values = sample_values(LINKS, sequence, subscriber)
        html = sample.message.content.html
        filled, text = fill(html, values), fill(sample.message.content.text, values)
        assert "%%" not in filled and "%%" not in text
        assert f"Hi {values['first_name']}," in filled and f"Hi {values['first_name']}," in text
        seen.append(values["first_name"])
    assert seen == ["Alexandra", "there"]
    assert recipient_values({"first_name": "<b>Al</b>"})["first_name:html"] == (
        "&lt;b&gt;Al&lt;/b&gt;")


def test_the_confirmation_is_a_styled_letter_with_one_button() -> None:
    sample = confirmation_email()
    html, text = sample.html, sample.text
    assert 'class="card"' in html and "<h1" in html and "Please confirm your email address" in html
    assert re.search(rf'<a class="button pass" href="{re.escape(CONFIRM_URL)}"', html)
    assert f"Yes, send it to me: {CONFIRM_URL}" in text
    assert POSTAL in html.replace("&#39;", "'") and POSTAL in text
    # nobody is on a list yet: nothing to unsubscribe from, and no one-click header
    assert "Unsubscribe" not in html and "Unsubscribe" not in text
    assert "List-Unsubscribe" not in sample.message.headers()


def test_the_confirmation_escapes_the_name_it_was_given() -> None:
    from drip.optin import confirmation

    message = confirmation(sender(), "x@example.com", '<img src=x onerror="alert(1)">',
                           "7-Week Program", CONFIRM_URL, 2)
    assert "<img" not in message.html()
    assert "Hi &lt;img src=x onerror=\"alert(1)\"&gt;," in message.html()


def test_the_digest_is_a_letter_whose_addresses_start_an_email() -> None:
    sample = digest_email()
    assert 'class="card"' in sample.html and "Who might like to hear from you" in sample.html
    assert re.search(r'Kim Baptiste \(<a href="mailto:kim@example.com"[^>]*>kim@example.com</a>\)',
                     sample.html)
    assert "Kim Baptiste <kim@example.com>: no answer to the week 5 checkpoint" in sample.text
    assert "Unsubscribe" not in sample.html and POSTAL in sample.text


def test_the_header_shows_the_brand_name_and_logo_with_alt_text() -> None:
    plain = weekly_emails()[0].html
    assert '<span class="brand-name"' in plain and ">Dayna</span>" in plain
    assert "<img" not in plain
    branded = weekly_emails(sender(brand_name="Dayna's Running Lab",
                                   logo_url="https://www.example.com/logo.png"))[0].html
    logo = re.search(r"<img [^>]*>", branded)
    assert logo is not None
    assert 'src="https://www.example.com/logo.png"' in logo.group(0)
    assert 'alt="Dayna\'s Running Lab"' in logo.group(0) and 'height="48"' in logo.group(0)
    letter = confirmation_email(sender(logo_url="https://www.example.com/logo.png")).html
    assert 'src="https://www.example.com/logo.png"' in letter and 'alt="Dayna"' in letter


@pytest.mark.parametrize("value", ["http://www.example.com/logo.png", "javascript:alert(1)",
                                   "https://www.example.com/a logo.png",
                                   'https://www.example.com/"onload="x', "logo.png"])
def test_a_logo_that_mail_programs_would_not_show_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"DRIP_BRAND_LOGO_URL": value, "DRIP_SECRET_KEY": "k"})
    assert "DRIP_BRAND_LOGO_URL must be an https:// address" in str(caught.value)


def test_the_brand_settings_reach_the_sender() -> None:
    from drip.runtime import sender_of

    settings = load_settings({"DRIP_BRAND_LOGO_URL": "https://cdn.example.com/l.png?v=2&s=1",
                              "DRIP_BRAND_NAME": "Dayna's Running Lab",
                              "DRIP_SECRET_KEY": "k"})
    who = sender_of(settings)
    assert who.brand == {"name": "Dayna's Running Lab",
                         "logo_url": "https://cdn.example.com/l.png?v=2&s=1"}
    assert who.templates_dir == settings.templates_dir
    with pytest.raises(ConfigError, match="DRIP_BRAND_NAME must be one line"):
        load_settings({"DRIP_BRAND_NAME": "Dayna\nBcc: x", "DRIP_SECRET_KEY": "k"})


def test_a_test_send_wears_the_same_layout(tmp_path: Path) -> None:
    """`drip test-send` goes through a provider like any email: the .eml in the outbox
    carries the layout, the letterhead and the checkpoint buttons."""
    who = sender(brand_name="Dayna's Running Lab", logo_url="https://www.example.com/logo.png")
    lib = library()
    provider = OutboxProvider(tmp_path, lambda: datetime(2026, 3, 2, tzinfo=UTC))
    result = send_test(lib, Renderer(ROOT / "templates", lib, who), who, LINKS, provider,
                       sequence_key="pht-7-week", step_key="week-3", to="me@example.com",
                       nudge="12-week-program")
    assert result.verdict == "accepted"
    (eml,) = tmp_path.glob("*.eml")
    mime = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert mime["Subject"].startswith("[TEST] Week 3")
    html = next(p.get_content() for p in mime.walk() if p.get_content_type() == "text/html")
    assert '<!--[if mso]><table role="presentation" width="600"' in html
    assert re.search(r'<a class="button pass" href="https://drip\.test/c/[^"]+"[^>]*>Passed</a>',
                     html)
    assert re.search(r'<a class="button notyet" href="https://drip\.test/c/[^"]+"[^>]*>Not yet<',
                     html)
    assert 'alt="Dayna\'s Running Lab"' in html and "12-week strength program" in html


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_no_email_is_long_enough_for_gmail_to_clip(sample: Sample) -> None:
    """Gmail hides everything after the first 102 KB behind "[Message clipped]": the
    footer with the unsubscribe link would be the first thing to go."""
    assert len(sample.html.encode("utf-8")) < 60_000, sample.name


def test_a_confirmation_still_goes_out_when_the_layout_cannot_print_it(tmp_path: Path) -> None:
    """A missing or half-edited layout is the coach's to fix (`drip lint` names the line);
    meanwhile the person asking to join still gets a working link."""
    (tmp_path / "layout.html.j2").write_text("{% if %}", encoding="utf-8")
    (tmp_path / "layout.txt.j2").write_text("{{ body }}", encoding="utf-8")
    from drip.optin import confirmation

    message = confirmation(sender(templates_dir=tmp_path), "x@example.com", "Al",
                           "7-Week Program", CONFIRM_URL, 3)
    assert f'<a href="{CONFIRM_URL}">Yes, send it to me</a>' in message.html()
    assert f"Yes, send it to me: {CONFIRM_URL}" in message.text()
    assert POSTAL in message.text() and "Hi Al," in message.text()


def test_a_layout_from_before_letters_gets_the_confirmation_plain(tmp_path: Path) -> None:
    """An old layout prints every email's weekly footer; for a letter its unsubscribe and
    pause links would lead nowhere, so the confirmation goes out plain instead."""
    for name in ("layout.html.j2", "layout.txt.j2"):
        (tmp_path / name).write_text(
            (ROOT / "tests" / "fixtures" / "basic" / "templates" / name).read_text())
    from drip.optin import confirmation

    message = confirmation(sender(templates_dir=tmp_path), "x@example.com", "Al",
                           "7-Week Program", CONFIRM_URL, 4)
    assert f'<a href="{CONFIRM_URL}">Yes, send it to me</a>' in message.html()
    assert 'href=""' not in message.html() and "Unsubscribe" not in message.text()


def test_a_placeholder_in_a_link_target_is_filled_in_both_parts(tmp_path: Path) -> None:
    """`[write back](mailto:{{ subscriber.email }})`: the HTML part's link reaches the
    subscriber's own address, not "mailto:%25%25email%25%25"."""
    import shutil

    from drip.render import Sender
    from drip.sequence import load_library

    fixture = ROOT / "tests" / "fixtures" / "basic"
    shutil.copytree(fixture, tmp_path / "basic")
    week = tmp_path / "basic" / "templates" / "basic" / "week.md.j2"
    week.write_text(week.read_text() + "\nReply to [your own address]"
                    "(mailto:{{ subscriber.email }}?subject=Week%201).\n")
    library = load_library(tmp_path / "basic" / "sequences")
    renderer = Renderer(tmp_path / "basic" / "templates", library,
                        Sender("Dayna", "coach@example.com", "1 Track Lane, Leeds"))
    content = renderer.content("basic", "week-1", nudge=None)
    values = recipient_values({"email": "ann+runs@example.com", "first_name": "Ann"})
    html, text = fill(content.html, values), fill(content.text, values)
    assert 'href="mailto:ann+runs@example.com?subject=Week%201"' in html
    assert "%25%25" not in content.html
    assert "mailto:ann+runs@example.com?subject=Week%201" in text
