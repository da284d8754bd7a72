"""`drip preview`: each email as the coach's subscribers will see it, in files or a local page.

The page lists every sequence and step, shows an email as HTML at phone and desktop
widths and as plain text, switches variant and nudge, and reloads itself when a
sequence or template file changes. It is for the coach's own machine only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from drip.errors import DripError
from drip.links import Links
from drip.message import Message
from drip.render import Renderer, Sender
from drip.samples import render_sample, variants_of
from drip.sequence import Library, load_library

PHONE_WIDTH = 390
DESKTOP_WIDTH = 820


def write_preview(message: Message, out_dir: Path, test_variant: str | None = None
                  ) -> list[Path]:
    """The email as `<step>-<variant>[-<nudge>][-test-<key>].html` and `.txt` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{message.step_key}-{message.variant.replace('+', '-')}"
    if message.nudge:
        stem += f"-{message.nudge}"
    if test_variant:
        stem += f"-test-{test_variant}"
    html_path, text_path = out_dir / f"{stem}.html", out_dir / f"{stem}.txt"
    html_path.write_text(message.html(), encoding="utf-8")
    text_path.write_text(f"Subject: {message.subject()}\n\n{message.text()}", encoding="utf-8")
    return [html_path, text_path]


@dataclass
class Workspace:
    """The coach's files, reloaded whenever one of them changes."""

    sequences_dir: Path
    templates_dir: Path
    sender: Sender
    links: Links
    _version: str = ""
    _library: Library | None = None
    _renderer: Renderer | None = None

    def version(self) -> str:
        """Changes whenever a sequence or template file is added, removed or saved."""
        files = [*self.sequences_dir.rglob("*"), *self.templates_dir.rglob("*")]
        stamp = sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                       for f in files if f.is_file())
        return str(hash(tuple(stamp)) & 0xFFFFFFFFFFFF)

    def current(self) -> tuple[Library, Renderer]:
        version = self.version()
        if self._library is None or self._renderer is None or version != self._version:
            library = load_library(self.sequences_dir)
            self._renderer = Renderer(self.templates_dir, library, self.sender)
            self._library, self._version = library, version
        return self._library, self._renderer

    def message(self, sequence_key: str, step_key: str, variant: str,
                nudge: str | None) -> Message:
        library, renderer = self.current()
        return render_sample(library, renderer, self.sender, self.links, sequence_key,
                             step_key, variant, nudge)


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       background: #f3f1ee; color: #1f2a2e; }
header { background: #1f2a2e; color: #fff; padding: 10px 18px; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
main { padding: 14px 18px; }
.error { background: #fde8e4; border: 1px solid #e0a497; padding: 12px; border-radius: 6px; }
.meta { margin: 0 0 10px 0; } .meta b { display: inline-block; min-width: 80px; }
form { margin: 8px 0 14px 0; display: flex; gap: 12px; flex-wrap: wrap; align-items: center; }
.views { display: flex; gap: 18px; flex-wrap: wrap; align-items: flex-start; }
.view { min-width: 0; }
.view h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; margin: 0 0 6px; }
iframe { border: 1px solid #cfcac2; background: #fff; border-radius: 6px; height: 760px; }
iframe.phone { width: @PHONE@px; } iframe.desktop { width: @DESKTOP@px; }
pre { background: #fff; border: 1px solid #cfcac2; padding: 12px; border-radius: 6px;
      white-space: pre-wrap; max-width: 760px; font-size: 13px; }
ul.steps li { margin: 4px 0; }
@media (max-width: 700px) { .view { flex: 1 1 100%; } .view.wide { display: none; }
  iframe.phone { width: 100%; box-sizing: border-box; } }
""".replace("@PHONE@", str(PHONE_WIDTH)).replace("@DESKTOP@", str(DESKTOP_WIDTH))

_RELOAD = """<script>
(function () {
  let seen = null;
  async function poll() {
    try {
      const answer = await fetch('/changes', {cache: 'no-store'});
      const version = (await answer.json()).version;
      if (seen !== null && version !== seen) { location.reload(); return; }
      seen = version;
    } catch (e) { /* the server restarts: try again */ }
    setTimeout(poll, 1000);
  }
  poll();
})();
</script>"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><a href='/'>drip preview</a> &middot; {html.escape(title)}</header>"
        f"<main>{body}</main>{_RELOAD}</body></html>")


def _error(exc: DripError) -> str:
    return f"<div class='error' id='error'>{html.escape(str(exc))}</div>"


def preview_app(workspace: Workspace) -> Starlette:
    """The local preview page (see the module docstring)."""

    async def index(request: Request) -> Response:
        try:
            library, _ = workspace.current()
        except DripError as exc:
            return _page("sequences", _error(exc))
        parts = []
        for sequence in library.sequences.values():
            items = "".join(
                f"<li><a href='/email/{sequence.key}/{s.key}'>Week {s.week}: "
                f"{html.escape(s.subject)}</a> <small>({s.key})</small></li>"
                for s in sequence.steps)
            parts.append(f"<h2>{html.escape(sequence.name)}</h2>"
                         f"<p><code>{sequence.key}</code></p><ul class='steps'>{items}</ul>")
        return _page("sequences", "".join(parts) or "<p>No sequences yet.</p>")

    def choice(request: Request) -> tuple[str, str, str, str | None]:
        nudge = request.query_params.get("nudge") or None
        return (request.path_params["sequence"], request.path_params["step"],
                request.query_params.get("variant", "main"), nudge)

    async def email(request: Request) -> Response:
        sequence_key, step_key, variant, nudge = choice(request)
        try:
            library, _ = workspace.current()
            sequence = library.sequence(sequence_key)
            message = workspace.message(sequence_key, step_key, variant, nudge)
        except DripError as exc:
            return _page(f"{sequence_key} / {step_key}", _error(exc))
        variants = "".join(
            f"<option value='{v}'{' selected' if v == variant else ''}>{v}</option>"
            for v in variants_of(sequence, step_key))
        nudges = "<option value=''>no nudge</option>" + "".join(
            f"<option value='{o.key}'{' selected' if o.key == nudge else ''}>{o.key}</option>"
            for o in library.offers.offers)
        query = urlencode({"variant": variant, "nudge": nudge or ""})
        raw = f"/raw/{sequence_key}/{step_key}.html?{query}"
        body = (
            f"<p class='meta'><b>Subject</b> <span id='subject'>"
            f"{html.escape(message.subject())}</span></p>"
            f"<p class='meta'><b>Preheader</b> {html.escape(message.content.preheader)}</p>"
            f"<form method='get'><label>Variant <select name='variant' id='variant' "
            f"onchange='this.form.submit()'>{variants}</select></label>"
            f"<label>Nudge <select name='nudge' id='nudge' onchange='this.form.submit()'>"
            f"{nudges}</select></label></form>"
            f"<div class='views'>"
            f"<div class='view'><h3>Phone</h3><iframe class='phone' title='phone' "
            f"src='{raw}'></iframe></div>"
            f"<div class='view wide'><h3>Desktop</h3><iframe class='desktop' title='desktop' "
            f"src='{raw}'></iframe></div>"
            f"<div class='view'><h3>Plain text</h3><pre id='text'>"
            f"{html.escape(message.text())}</pre></div></div>")
        return _page(f"{sequence.name} / {step_key}", body)

    async def raw(request: Request) -> Response:
        sequence_key, step_key, variant, nudge = choice(request)
        try:
            message = workspace.message(sequence_key, step_key, variant, nudge)
        except DripError as exc:
            return HTMLResponse(_error(exc), status_code=404)
        return HTMLResponse(message.html())

    async def changes(request: Request) -> Response:
        return JSONResponse({"version": workspace.version()},
                            headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/", index),
        Route("/email/{sequence}/{step}", email),
        Route("/raw/{sequence}/{step}.html", raw),
        Route("/changes", changes),
    ])


__all__ = ["Workspace", "preview_app", "variants_of", "write_preview"]
