"""`drip digest`: the coach's weekly report, emailed or printed."""

from __future__ import annotations

from typing import Annotated

import typer

from drip.cli._common import EXIT_INVALID, console, drip_from_env, fail, guarded


def register(app: typer.Typer) -> None:
    app.command("digest")(digest)


@guarded
def digest(
    print_only: Annotated[bool, typer.Option("--print", help="Print it instead of emailing.")]
    = False,
    now: Annotated[str | None, typer.Option(
        help="The digest as it stood at this ISO 8601 time (for a simulated run).")] = None,
) -> None:
    """Email the coach (DRIP_COACH_EMAIL) who is where, who struggles, who graduated."""
    from drip.digest import digest_text, gather, send_digest

    with drip_from_env(now) as drip:
        if print_only:
            console.print(digest_text(gather(drip.store, drip.library, drip.clock.now())),
                          highlight=False, markup=False)
            return
        if not drip.settings.coach_email:
            fail("DRIP_COACH_EMAIL is not set; set it, or use `drip digest --print`.",
                 EXIT_INVALID)
        provider = drip.provider()
        try:
            send_digest(drip.store, drip.library, provider, drip.sender,
                        drip.settings.coach_email, drip.clock.now())
        finally:
            provider.close()
    console.print(f"Sent the digest to {drip.settings.coach_email}.")
