"""`drip stats`: each sequence's funnel per step, with bars, and what each offer earned."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.text import Text

from drip.cli._common import console, drip_from_env, guarded, print_json

if TYPE_CHECKING:
    from drip.experiments.report import HoldoutResult, SplitResult
    from drip.runtime import Drip
    from drip.stats import Funnel, StepFunnel
    from drip.store import LinkClicks

BAR = 24


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


@guarded
def stats(
    sequence: Annotated[str | None, typer.Option("--sequence", "-s", help="Only this "
                                                 "sequence.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    tests: Annotated[bool, typer.Option("--tests", help="The split tests: each variant's "
                                        "numbers and what they show.")] = False,
) -> None:
    """Sent, delivered, opened, clicked and checkpoint answers per step; nudges per offer;
    clicks per link and the nudge holdout. --tests: the split tests instead."""
    from drip.stats import funnels

    if tests:
        split_tests(sequence, as_json)
        return
    with drip_from_env() as drip:
        found = funnels(drip.store, drip.library, sequence)
        learned = {f.sequence_key: learned_of(drip, f.sequence_key) for f in found}
    if as_json:
        print_json([{**as_dict(f), **learned_json(learned[f.sequence_key])} for f in found])
        return
    for item in found:
        print_funnel(item)
        print_learned(learned[item.sequence_key])


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


# --- what the experiments show (drip.experiments.report) -------------------------------------


def split_tests(sequence: str | None, as_json: bool) -> None:
    """`drip stats --tests`: per test and variant, sent, the metric's count and rate, the
    difference with its 95% interval, and the decision."""
    from drip.experiments.report import split_results

    with drip_from_env() as drip:
        found = split_results(drip.store, drip.library, drip.clock.now(), sequence)
    if as_json:
        print_json([split_json(t) for t in found])
        return
    if not found:
        console.print("No step has a split test (a 'test:' block); docs/writing-sequences.md "
                      "shows how to write one.")
    for item in found:
        print_test(item)


def split_json(item: SplitResult) -> dict[str, Any]:
    return {"sequence": item.sequence_key, "step": item.step_key, "name": item.name,
            "metric": item.metric, "min_per_variant": item.min_per_variant,
            "decision": item.decision, "leader": item.leader,
            "sent_to_everyone": item.sent_to_everyone,
            "variants": [asdict(v) for v in item.variants],
            "differences": [asdict(d) for d in item.differences]}


def signed_points(value: float) -> str:
    """A difference of two rates in percentage points, with its sign."""
    return f"{100 * value:+.1f}"


def print_test(item: SplitResult) -> None:
    from rich.table import Table

    from drip.experiments.statistics import label

    caption = (f"Decision: {item.decision}. The 95% interval is right for one look; the "
               "decision uses the always-valid interval (mSPRT, docs/writing-sequences.md), "
               "so looking every day does not make a winner out of chance, and no leader is "
               f"named below {item.min_per_variant} per variant.")
    if item.sent_to_everyone and item.since:
        caption += (f" Everyone has got {label(item.sent_to_everyone)} since "
                    f"{item.since:%Y-%m-%d %H:%M} UTC (winner: auto).")
    table = Table(title=f"{item.name} ({item.sequence_key}, {item.step_key}): {item.metric}",
                  title_justify="left", box=box.SIMPLE_HEAD, caption=caption,
                  caption_justify="left")
    for column in ("Variant", "Sent", item.metric.replace("_", " ").capitalize(), "Rate",
                   "Difference (points)", "95% interval", "Always-valid"):
        table.add_column(column, justify="left" if column == "Variant" else "right")
    differences = {d.key: d for d in item.differences}
    for v in item.variants:
        d = differences.get(v.key)
        table.add_row(label(v.key) + (" (control)" if d is None else ""), str(v.sent),
                      str(v.count), f"{100 * v.rate:.1f}%" if v.sent else "-",
                      signed_points(d.difference) if d else "",
                      f"{signed_points(d.low)} to {signed_points(d.high)}"
                      if d and v.sent else "",
                      f"{signed_points(d.sequential_low)} to {signed_points(d.sequential_high)}"
                      if d and v.sent else "")
    console.print(table)


def learned_of(drip: Drip, sequence_key: str) -> tuple[list[LinkClicks], HoldoutResult | None]:
    from drip.experiments.report import holdout_result, link_clicks

    return (link_clicks(drip.store, drip.library, sequence_key),
            holdout_result(drip.store, drip.library, sequence_key))


def learned_json(learned: tuple[list[LinkClicks], HoldoutResult | None]) -> dict[str, Any]:
    links, holdout = learned
    return {"links": [asdict(link) for link in links],
            "holdout": asdict(holdout) if holdout else None}


def print_learned(learned: tuple[list[LinkClicks], HoldoutResult | None]) -> None:
    from rich.table import Table

    links, holdout = learned
    if links:
        table = Table(title="Clicks per link", title_justify="left", box=box.SIMPLE_HEAD,
                      caption="People count once per link; link scanners (HEAD requests, "
                              "clicks on arrival, every link at once) are not counted.",
                      caption_justify="left")
        for column in ("Step", "Link", "People", "Scanner hits"):
            table.add_column(column, justify="left" if column in ("Step", "Link")
                             else "right")
        for link in links:
            table.add_row(link.step_key, link.url, str(link.people), str(link.scanner_hits))
        console.print(table)
    if holdout is not None:
        console.print(
            f"Nudge holdout ({100 * holdout.share:.0f}% of enrollments get no offers): "
            f"{share(holdout.holdout_bought, holdout.holdout)} bought without offers, "
            f"{share(holdout.exposed_bought, holdout.exposed)} with them. "
            + (f"The nudges add {signed_points(holdout.difference)} points to the purchase "
               f"rate (95% interval {signed_points(holdout.low)} to "
               f"{signed_points(holdout.high)}).\n"
               if holdout.holdout_bought + holdout.exposed_bought
               else "Nobody in either group has bought yet.\n"))


def share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / whole:.1f}%)" if whole else f"{part} of 0"
