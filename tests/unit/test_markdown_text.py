"""The plain-text part made from a template's Markdown: readable, with no markup left."""

from __future__ import annotations

from drip.render import markdown_to_text


def test_links_and_images_are_spelled_out() -> None:
    text = markdown_to_text("Book [the assessment](https://example.com/a) now.\n"
                            "![Bridge hold](https://example.com/bridge.png)")
    assert text.splitlines() == ["Book the assessment (https://example.com/a) now.",
                                 "Bridge hold (https://example.com/bridge.png)"]


def test_raw_html_tags_are_left_out_of_the_text_part() -> None:
    text = markdown_to_text('Hold for <strong>45 seconds</strong>,<br/> then <span class="x">'
                            "rest</span>. Questions: <https://example.com/faq>, 3 < 4 > 2.")
    assert text == ("Hold for 45 seconds, then rest. Questions: <https://example.com/faq>, "
                    "3 < 4 > 2.")


def test_headings_and_bold() -> None:
    assert markdown_to_text("## Week 1\n**Easy** does it").splitlines() == [
        "WEEK 1", "------", "Easy does it"]
