"""`drip tag add/remove EMAIL TAG`: set or remove a tag on a subscriber by hand.

A tag can end a sequence (`goals: [{tag: ..., stops: sequence}]`) or pick a step's branch
at the next dispatch; docs/writing-sequences.md says how. `drip subscriber` shows them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from drip.addresses import normalise_email
from drip.cli._common import console, drip_from_env, guarded, print_json
from drip.tags import clean_tag

app = typer.Typer(help="Set or remove a subscriber's tags.", no_args_is_help=True)

Email = Annotated[str, typer.Argument(help="The subscriber's email address.")]
Tag = Annotated[str, typer.Argument(help="The tag, like clinician-referral.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("add")
@guarded
def add(email: Email, tag: Tag, as_json: Json = False) -> None:
    """Set a tag on a subscriber (a goal on it ends their sequence at the next dispatch)."""
    address, name = normalise_email(email), clean_tag(tag)
    with drip_from_env() as drip:
        added = drip.store.tag_subscriber(address, name, drip.clock.now())
    if as_json:
        print_json({"email": address, "tag": name, "added": added})
    else:
        console.print(f"Tagged {address} {name}." if added
                      else f"{address} already has the tag {name}.")


@app.command("remove")
@guarded
def remove(email: Email, tag: Tag, as_json: Json = False) -> None:
    """Remove a tag from a subscriber."""
    address, name = normalise_email(email), clean_tag(tag)
    with drip_from_env() as drip:
        removed = drip.store.untag_subscriber(address, name)
    if as_json:
        print_json({"email": address, "tag": name, "removed": removed})
    else:
        console.print(f"Removed the tag {name} from {address}." if removed
                      else f"{address} does not have the tag {name}.")
