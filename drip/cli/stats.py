"""`drip stats`: each sequence's funnel per step, with bars, and what each offer earned."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.text import Text

from drip.cli._common import console, drip_from_env, guarded, print_json

if TYPE_CHECKING:
    from drip.stats import Funnel, StepFunnel

BAR = 24


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


@guarded
def stats(
    sequence: Annotated[str | None, typer.Option("--sequence", "-s", help="Only this "
                                                 "sequence.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sent, delivered, opened, clicked and checkpoint answers per step; nudges per offer."""
    from drip.stats import funnels

    with drip_from_env() as drip:
        found = funnels(drip.store, drip.library, sequence)
    if as_json:
        print_json([as_dict(f) for f in found])
        return
    for item in found:
        print_funnel(item)


def as_dict(item: Funnel) -> dict[str, Any]:
    return {"sequence": item.sequence_key, "name": item.name,
            "steps": [{**asdict(s), "email": s.label, "answered": s.answered,
                       "unanswered": s.unanswered}
                      for s in item.steps],
            "offers": [asdict(o) for o in item.offers]}


def bar(step: StepFunnel, widest: int) -> Text:
    """Sent as the whole bar; the darker the segment, the further people went."""
    if widest == 0:
        return Text("")
    scale = BAR / widest
    parts = [(step.clicked, "bright_green"), (step.opened - step.clicked, "green"),
             (step.delivered - step.opened, "dark_green"), (step.sent - step.delivered, "grey50")]
    text = Text()
    for count, style in parts:
        text.append("█" * round(max(count, 0) * scale), style=style)
    return text


def percent(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else str(part)


def print_funnel(item: Funnel) -> None:
    from rich.table import Table

    widest = max((s.sent for s in item.steps), default=0)
    table = Table(title=f"{item.name} ({item.sequence_key})", title_justify="left",
                  box=box.SIMPLE_HEAD, caption_justify="left", caption=Text.assemble(
                      "Funnel: all sent; ", ("█", "bright_green"), " clicked ",
                      ("█", "green"), " opened ", ("█", "dark_green"), " delivered ",
                      ("█", "grey50"), " no event yet"))
    for column in ("Step", "Email", "Sent", "Delivered", "Opened", "Clicked", "Funnel", "Answered",
                   "Passed", "Not yet", "No answer"):
        table.add_column(column, justify="left" if column in ("Step", "Email", "Funnel")
                         else "right",
                         no_wrap=True)
    for s in item.steps:
        table.add_row(s.step_key, s.label, str(s.sent), percent(s.delivered, s.sent),
                      percent(s.opened, s.sent), percent(s.clicked, s.sent), bar(s, widest),
                      *((percent(s.answered, s.sent), str(s.passed), str(s.not_yet),
                         str(s.unanswered)) if s.checkpoint else ("-", "-", "-", "-")))
    console.print(table)
    if not item.offers:
        console.print("No email carried an offer yet.\n")
        return
    offers = Table(title="Nudges", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Offer", "Emails", "People", "Clicks", "Bought after the nudge"):
        offers.add_column(column, justify="left" if column == "Offer" else "right")
    for o in item.offers:
        # buyers are people, so the rate is of the people nudged, not of the emails
        offers.add_row(o.name, str(o.shown), str(o.people), str(o.clicks),
                       percent(o.conversions, o.people))
    console.print(offers)
