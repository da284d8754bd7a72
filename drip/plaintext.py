"""The plain-text part of an email, written from the same Markdown as its HTML part.

markdown-it-py parses the template's Markdown into its token tree (the parser the HTML
part uses, with the same options), and this module writes that tree out the way a
plain-text email reads: headings underlined, emphasis and code without their marks,
links as "words (address)", images as their alt text, lists with bullets and numbers.
Placeholders such as %%first_name%% pass through untouched, also inside a link.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import normalizeLink
from markdown_it.tree import SyntaxTreeNode

#: A per-recipient placeholder (drip.message): percent-encoding it would break it.
_PLACEHOLDER = re.compile(r"(%%[a-z_]+(?::html)?%%)")
_AROUND_BREAK = re.compile(r"[ \t]*\n[ \t]*")
#: What a thematic break (---, ***) reads as.
BREAK = "* * *"
#: Raw HTML tags that end a line in the text part.
_LINE_TAGS = frozenset({"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "blockquote", "ul", "ol", "table"})


def _normalize_link(url: str) -> str:
    """markdown-it's own link normalisation, except for placeholders, which stay whole."""
    pieces = _PLACEHOLDER.split(url)
    return "".join(p if _PLACEHOLDER.fullmatch(p) else normalizeLink(p) for p in pieces)


def markdown_parser() -> MarkdownIt:
    """The parser both parts of an email are written from (commonmark and the typographer:
    curly quotes and dashes, the same in both parts)."""
    parser = MarkdownIt("commonmark", {"typographer": True}).enable(
        ["replacements", "smartquotes"])
    parser.normalizeLink = _normalize_link  # type: ignore[method-assign]
    return parser


_PARSER = markdown_parser()


def markdown_to_text(markdown: str) -> str:
    """Markdown made to read well as a plain-text email: links spelled out, no markup noise."""
    tree = SyntaxTreeNode(_PARSER.parse(markdown))
    return _join(tree.children, tight=False)


def _join(nodes: list[SyntaxTreeNode], *, tight: bool) -> str:
    """Blocks one after another: a blank line between them, none inside a tight list."""
    written = [text for text in (_block(node) for node in nodes) if text]
    return ("\n" if tight else "\n\n").join(written)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "heading":
        return _heading(int(node.tag[1]), _inline(node.children[0]))
    if kind == "paragraph":
        return _inline(node.children[0]) if node.children else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        inner = _join(node.children, tight=False)
        return "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
    if kind == "hr":
        return BREAK
    if kind in ("code_block", "fence"):
        return "\n".join(f"    {line}".rstrip() for line in node.content.rstrip("\n").split("\n"))
    if kind == "html_block":
        return _html_text(node.content).strip()
    return _join(node.children, tight=False)  # a container this module does not know


def _heading(level: int, title: str) -> str:
    """# and ## shout (in capitals, underlined with = and -), like the layout's own
    headings; smaller headings are a line of their own. A placeholder keeps its case,
    or it would not be filled in."""
    if level > 2:
        return title
    shouted = "".join(p if _PLACEHOLDER.fullmatch(p) else p.upper()
                      for p in _PLACEHOLDER.split(title))
    return f"{shouted}\n{('=' if level == 1 else '-') * len(shouted)}"


def _list(node: SyntaxTreeNode) -> str:
    ordered = node.type == "ordered_list"
    number = int(str(node.attrs.get("start", 1))) if ordered else 0
    # a tight list hides its items' paragraphs: no blank lines between the items
    tight = all(child.hidden for item in node.children for child in item.children
                if child.type == "paragraph")
    items = []
    for offset, item in enumerate(node.children):
        marker = f"{number + offset}{item.markup or '.'} " if ordered else "- "
        body = _join(item.children, tight=tight)
        lines = body.splitlines() or [""]
        indent = " " * len(marker)
        items.append("\n".join([marker + lines[0],
                                *(indent + line if line else "" for line in lines[1:])]))
    return ("\n" if tight else "\n\n").join(items)


def _inline(node: SyntaxTreeNode) -> str:
    """The words of one line of Markdown (a paragraph, a heading, a list item's text)."""
    words = "".join(_span(child) for child in node.children)
    return _AROUND_BREAK.sub("\n", words).strip()


def _span(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "text":
        return node.content
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "code_inline":
        return node.content
    if kind == "image":
        return "".join(_span(child) for child in node.children)  # its alt text
    if kind == "html_inline":
        return _html_text(node.content)
    if kind == "link":
        words = "".join(_span(child) for child in node.children).strip()
        href = str(node.attrs.get("href", ""))
        if node.markup == "autolink" or words in (href, href.removeprefix("mailto:")):
            return words
        return f"{words} ({href})" if words else href
    return "".join(_span(child) for child in node.children)  # em, strong, ...: the words


class _HtmlText(HTMLParser):
    """The words of raw HTML in a template: tags left out, a line break where one ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "img":
            self.parts.append(dict(attrs).get("alt") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in _LINE_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return _AROUND_BREAK.sub("\n", "".join(parser.parts))
