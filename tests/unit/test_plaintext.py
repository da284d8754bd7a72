"""The plain-text part made from a template's Markdown: every construct the shipped
templates and docs/writing-sequences.md use reads as a runner would expect, with no
markup left and every per-recipient placeholder untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drip.plaintext import BREAK, markdown_to_text
from tests.conftest import ROOT


def test_headings_shout_and_are_underlined_smaller_ones_stand_alone() -> None:
    text = markdown_to_text("# Welcome\n\n## Week 1\n\n### 1. Bridge hold\n\nHold it.")
    assert text.split("\n") == ["WELCOME", "=======", "", "WEEK 1", "------", "",
                                "1. Bridge hold", "", "Hold it."]


def test_setext_headings_read_like_atx_ones() -> None:
    assert markdown_to_text("Week 1\n======\n\nRest\n----\n") == (
        "WEEK 1\n======\n\nREST\n----")


def test_emphasis_strong_and_code_lose_their_marks() -> None:
    text = markdown_to_text("Holds *start loading* the tendon, **70% effort**, "
                            "_gently_, __firmly__ and `3 x 8`.")
    assert text == "Holds start loading the tendon, 70% effort, gently, firmly and 3 x 8."


def test_links_are_spelled_out_and_reference_links_resolved() -> None:
    text = markdown_to_text(
        "Book [the assessment](https://example.com/a) now, read [the guide][guide],\n"
        "see <https://example.com/faq> or write to <coach@example.com>.\n\n"
        '[guide]: https://example.com/guide?a=1&b=2 "The guide"\n')
    assert text == ("Book the assessment (https://example.com/a) now, read the guide "
                    "(https://example.com/guide?a=1&b=2),\nsee https://example.com/faq or "
                    "write to coach@example.com.")


def test_images_read_as_their_alt_text() -> None:
    text = markdown_to_text("![Bridge hold, side view](https://example.com/bridge.png)\n\n"
                            "[![Watch the demo](https://example.com/t.png)](https://example.com/v)")
    assert text == "Bridge hold, side view\n\nWatch the demo (https://example.com/v)"


def test_bullet_lists_tight_loose_and_nested() -> None:
    text = markdown_to_text("- Ribs down.\n- Push through your heels:\n  - left\n  - right\n"
                            "- Lift just high enough.\n")
    assert text.split("\n") == ["- Ribs down.", "- Push through your heels:", "  - left",
                                "  - right", "- Lift just high enough."]
    loose = markdown_to_text("* One.\n\n* Two, with more:\n\n  A second paragraph.\n")
    assert loose.split("\n") == ["- One.", "", "- Two, with more:", "", "  A second paragraph."]


def test_ordered_lists_keep_their_numbers() -> None:
    text = markdown_to_text("3. Warm up\n4. Hold\n   1. left\n   2. right\n5) nope\n")
    assert text.split("\n") == ["3. Warm up", "4. Hold", "   1. left", "   2. right", "",
                                "5) nope"]


def test_block_quotes_code_blocks_and_breaks() -> None:
    text = markdown_to_text("> Pain is information.\n>\n> So is the morning.\n\n---\n\n"
                            "    3 x 8\n    rest 2 min\n\n```\nRPE 7\n```\n")
    assert text.split("\n") == ["> Pain is information.", ">", "> So is the morning.", "",
                                BREAK, "", "    3 x 8", "    rest 2 min", "", "    RPE 7"]


def test_entities_and_escapes_are_written_as_characters() -> None:
    assert markdown_to_text("Hips &amp; knees &lt; 90&deg;, \\*not\\* stretched &#38; "
                            "&copy;") == "Hips & knees < 90°, *not* stretched & ©"


def test_hard_breaks_and_raw_html() -> None:
    text = markdown_to_text('**5 holds.**  \nRest 2 minutes.\\\nThen <strong>45 '
                            'seconds</strong>,<br/> then <span class="x">rest</span>, 3 < 4.\n\n'
                            '<div class="note"><p>Stop if it hurts.</p></div>\n')
    assert text.split("\n") == ["5 holds.", "Rest 2 minutes.", "Then 45 seconds,",
                                "then rest, 3 < 4.", "", "Stop if it hurts."]


def test_the_typographer_matches_the_html_part() -> None:
    assert markdown_to_text('It\'s "not yet" -- and that\'s fine...') == (
        "It’s “not yet” – and that’s fine…")


@pytest.mark.parametrize("markdown", [
    "Hi %%first_name%%, *%%first_name%%* and **%%email%%**.",
    "[Pause a week](%%pause_url%%) or [write](mailto:%%email%%)",
    "- %%first_name%%\n- `%%email%%`",
    "## %%first_name%%'s week",
])
def test_placeholders_survive_untouched(markdown: str) -> None:
    found = re.findall(r"%%[a-z_]+%%", markdown)
    text = markdown_to_text(markdown)
    assert re.findall(r"%%[A-Za-z_]+%%", text) == found
    assert "%25" not in text


def test_a_link_to_a_placeholder_is_spelled_out_whole() -> None:
    assert markdown_to_text("[Pause a week](%%pause_url%%)") == "Pause a week (%%pause_url%%)"


def shipped_markdown() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.md.j2"))


@pytest.mark.parametrize("path", shipped_markdown(), ids=lambda p: p.name)
def test_no_markup_is_left_in_any_shipped_template(path: Path) -> None:
    text = markdown_to_text(path.read_text(encoding="utf-8"))
    for mark in ("**", "](", "`", "&amp;", "<strong>", "###", "## "):
        assert mark not in text, (mark, path)
    assert not re.search(r"(?<![\w*])\*[^*\s][^*]*\*(?!\w)", text), path  # *em*
