"""`drip preview`: each email as the coach's subscribers will see it, in files or a local page.

The page lists every sequence and step, shows an email as HTML at phone and desktop
widths and as plain text, switches variant and nudge, and reloads itself when a
sequence or template file changes. It is for the coach's own machine only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from drip.errors import DripError, InvalidInput, SequenceError
from drip.journey import Persona, walk
from drip.links import Links
from drip.lint import Finding, findings_behind
from drip.message import Message
from drip.planner import NUDGEABLE, PASSED, base_variant
from drip.render import VARIANTS, Renderer, Sender
from drip.samples import render_sample, variants_of
from drip.sequence import Library, Step, load_library

#: When the runner of a default nudge joins: offers do not depend on the date.
_ANY_DAY = datetime(2026, 1, 5, tzinfo=UTC)
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


def preview_nudge(library: Library, sequence_key: str, step_key: str, variant: str,
                  nudge: str | None, *, no_nudge: bool = False) -> str | None:
    """The offer a previewed email shows: the one asked for; by default the one the step
    names, else the one a runner who passes every week gets there; never one in an email
    that is never sent with one."""
    sequence = library.sequence(sequence_key)
    if base_variant(variant) not in NUDGEABLE:
        if nudge and base_variant(variant) in VARIANTS:
            raise InvalidInput(f"A {variant} email never carries an offer (only main weekly "
                               "emails do); leave --nudge out to see it as it is sent.")
        return None
    if no_nudge or step_key not in sequence.step_keys:
        return None  # an unknown step: render_sample says which steps there are
    if nudge is not None or sequence.step(step_key).nudge:
        return nudge or sequence.step(step_key).nudge
    passes = Persona("UTC", _ANY_DAY, (PASSED,) * len(sequence.steps))
    return next((email.nudge for email in walk(sequence, library.offers, passes).emails
                 if email.step_key == step_key and base_variant(email.variant) == "main"), None)


def step_label(step: Step, subject: str) -> str:
    """'Week 3: slow eccentrics', without saying the week twice when the subject does."""
    week = f"Week {step.week}"
    return subject if subject.startswith(week) else f"{week}: {subject}"


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
    _findings: tuple[str, list[Finding]] | None = None

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

    def findings(self, error: SequenceError) -> list[Finding]:
        """What `drip lint` says about the files as they are now (once per version)."""
        version = self.version()
        if self._findings is None or self._findings[0] != version:
            self._findings = (version, findings_behind(error, self.sequences_dir,
                                                       self.templates_dir, self.sender,
                                                       self.links))
        return self._findings[1]


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


def _error(exc: DripError, workspace: Workspace) -> str:
    """The mistake, in red: for the coach's files, every error `drip lint` finds."""
    if not isinstance(exc, SequenceError):
        return f"<div class='error' id='error'>{html.escape(str(exc))}</div>"
    items = "".join(
        f"<li><b>{html.escape(f'{f.file}:{f.line}' if f.line else f.file)}</b>: "
        f"{html.escape(f.message)}" + (f"<br><small>Fix: {html.escape(f.fix)}</small>"
                                        if f.fix else "") + "</li>"
        for f in workspace.findings(exc))
    return (f"<div class='error' id='error'><p>The files have mistakes (as <code>drip lint"
            f"</code> says):</p><ul class='findings'>{items}</ul></div>")


def preview_app(workspace: Workspace) -> Starlette:
    """The local preview page (see the module docstring)."""

    async def index(request: Request) -> Response:
        try:
            library, _ = workspace.current()
        except DripError as exc:
            return _page("sequences", _error(exc, workspace))
        parts = []
        for sequence in library.sequences.values():
            items = "".join(
                f"<li><a href='/email/{sequence.key}/{s.key}'>"
                f"{html.escape(step_label(s, subject_of(sequence.key, s)))}</a> "
                f"<small>({s.key})</small></li>" for s in sequence.steps)
            parts.append(f"<h2>{html.escape(sequence.name)}</h2>"
                         f"<p><code>{sequence.key}</code></p><ul class='steps'>{items}</ul>")
        return _page("sequences", "".join(parts) or "<p>No sequences yet.</p>")

    def subject_of(sequence_key: str, step: Step) -> str:
        """The step's subject as the sample subscriber sees it (as written if it fails)."""
        try:
            return workspace.message(sequence_key, step.key, "main", None).subject()
        except DripError:
            return step.subject

    def choice(request: Request) -> tuple[str, str, str, str | None]:
        """(sequence, step, variant, nudge): with no nudge asked for, the step's default;
        'nudge=' (the menu's "no nudge") none."""
        sequence_key, step_key = request.path_params["sequence"], request.path_params["step"]
        variant = request.query_params.get("variant", "main")
        asked = request.query_params.get("nudge")
        library, _ = workspace.current()
        nudge = preview_nudge(library, sequence_key, step_key, variant,
                              None if base_variant(variant) not in NUDGEABLE else asked or None,
                              no_nudge=asked == "")
        return sequence_key, step_key, variant, nudge

    async def email(request: Request) -> Response:
        sequence_key, step_key = request.path_params["sequence"], request.path_params["step"]
        try:
            sequence_key, step_key, variant, nudge = choice(request)
            library, _ = workspace.current()
            sequence = library.sequence(sequence_key)
            message = workspace.message(sequence_key, step_key, variant, nudge)
        except DripError as exc:
            return _page(f"{sequence_key} / {step_key}", _error(exc, workspace))
        variants = "".join(
            f"<option value='{v}'{' selected' if v == variant else ''}>{v}</option>"
            for v in variants_of(sequence, step_key))
        nudges = "<option value=''>no nudge</option>" + "".join(
            f"<option value='{o.key}'{' selected' if o.key == nudge else ''}>{o.key}</option>"
            for o in library.offers.offers)
        carries = base_variant(variant) in NUDGEABLE
        nudge_menu = (f"<label>Nudge <select name='nudge' id='nudge' "
                      f"onchange='this.form.submit()'>{nudges}</select></label>" if carries
                      else "<small id='nudge'>No nudge: only main weekly emails carry an "
                           "offer.</small>")
        query = urlencode({"variant": variant, "nudge": nudge or ""})
        raw = f"/raw/{sequence_key}/{step_key}.html?{query}"
        body = (
            f"<p class='meta'><b>Subject</b> <span id='subject'>"
            f"{html.escape(message.subject())}</span></p>"
            f"<p class='meta'><b>Preheader</b> {html.escape(message.content.preheader)}</p>"
            f"<form method='get'><label>Variant <select name='variant' id='variant' "
            f"onchange='this.form.submit()'>{variants}</select></label>"
            f"{nudge_menu}</form>"
            f"<div class='views'>"
            f"<div class='view'><h3>Phone</h3><iframe class='phone' title='phone' "
            f"src='{raw}'></iframe></div>"
            f"<div class='view wide'><h3>Desktop</h3><iframe class='desktop' title='desktop' "
            f"src='{raw}'></iframe></div>"
            f"<div class='view'><h3>Plain text</h3><pre id='text'>"
            f"{html.escape(message.text())}</pre></div></div>")
        return _page(f"{sequence.name} / {step_key}", body)

    async def raw(request: Request) -> Response:
        try:
            message = workspace.message(*choice(request))
        except DripError as exc:
            return HTMLResponse(_error(exc, workspace), status_code=404)
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


__all__ = ["Workspace", "preview_app", "preview_nudge", "step_label", "variants_of",
           "write_preview"]
