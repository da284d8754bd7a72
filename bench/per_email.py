"""Where one worker's CPU goes per email, outside the database server and the network.

    python bench/per_email.py [--batch 1000] [--repeat 7]

Times, in one process and one run, each piece of Python work a batch of emails costs a
worker on its way through `drip dispatch`, with drip's own functions and no database or
HTTP: rendering (the render floor's work), deciding, the SendGrid request body, turning
answers into outcomes, the went-out records, planning the next emails, and the array
parameters of the three batch statements. Each figure is the best of --repeat runs, in
microseconds per email, next to its ratio to rendering. It does not count what waits on
PostgreSQL or the socket, nor the worker's start-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drip.clock import FixedClock  # noqa: E402
from drip.dispatch import Dispatcher, DispatchReport  # noqa: E402
from drip.links import Links  # noqa: E402
from drip.message import Message  # noqa: E402
from drip.providers.base import SendResult  # noqa: E402
from drip.providers.sendgrid import SendGridProvider  # noqa: E402
from drip.render import Renderer, Sender  # noqa: E402
from drip.sequence import load_library  # noqa: E402
from drip.store import ClaimedDelivery, Sending, WentOut  # noqa: E402
from drip.store._base import pg_array  # noqa: E402
from drip.tokens import Signer  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ZONES = ("Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata")


def best(work: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = args.batch

    library = load_library(ROOT / "sequences")
    sender = Sender("Dayna", "coach@example.com", "1 Track Lane, Leeds")
    renderer = Renderer(ROOT / "templates", library, sender)
    links = Links("https://drip.test", Signer("bench"))
    provider = SendGridProvider("SG.bench", host="http://127.0.0.1:9", timeout=1.0)
    clock = FixedClock(NOW)
    dispatcher = Dispatcher(store=None, library=library, renderer=renderer,  # type: ignore[arg-type]
                            provider=provider, links=links, sender=sender, clock=clock)
    claimed = [ClaimedDelivery(
        id=i, enrollment_id=i, subscriber_id=i, sequence_key="pht-7-week", seq_no=1,
        step_key="week-1", variant="main", nudge=None, due_at=NOW, attempts=0,
        email=f"runner{i}@example.com", name=f"Runner {i}", timezone=ZONES[i % len(ZONES)],
        enrolled_at=NOW - timedelta(days=1), enrollment_state="active", unsubscribed=False,
        suppressed=False, offers_opt_out=False) for i in range(1, n + 1)]
    by_id = {c.id: c for c in claimed}

    def sign() -> None:
        for c in claimed:
            links.unsubscribe(c.subscriber_id, c.enrollment_id)
            links.pause(c.enrollment_id, c.id)
            links.checkpoint(c.id, "passed")
            links.checkpoint(c.id, "not-yet")

    def render() -> list[Message]:
        return [dispatcher._message(c, "week-1", "main", "strength-assessment")
                for c in claimed]

    messages = render()

    def decide() -> None:
        dispatcher._decide(claimed, {}, {}, [], [], {}, [])

    def sending() -> None:
        held = [Sending(m.delivery_id, m.step_key, m.variant, m.nudge, m.content.content_hash)
                for m in messages]
        for column in (
                [s.delivery_id for s in held], [s.step_key for s in held],
                [s.variant for s in held], [s.nudge for s in held],
                [s.content_hash for s in held]):
            pg_array(column)

    def body() -> None:
        provider._body(messages, "0123456789abcdef")

    results = [SendResult(m.delivery_id, "accepted", message_id=f"m{m.delivery_id}")
               for m in messages]

    def outcomes() -> None:
        dispatcher._outcomes(results, by_id, {}, DispatchReport(sent_room=0))

    answered = dispatcher._outcomes(results, by_id, {}, DispatchReport(sent_room=0))

    def record_arrays() -> None:
        for column in ([o.delivery_id for o in answered], [o.state for o in answered],
                       [o.provider for o in answered], [o.message_id for o in answered],
                       [o.error for o in answered], [o.retry_at for o in answered]):
            pg_array(column)

    def went_out() -> dict[int, WentOut]:
        return {c.id: WentOut(c.id, c.enrollment_id, c.subscriber_id, m.sequence_key,
                              c.seq_no, m.step_key, m.variant, c.timezone, NOW)
                for m in messages for c in (by_id[m.delivery_id],)}

    went = list(went_out().values())

    def plan() -> None:
        planned, _ = dispatcher._next_steps(went)
        for column in ([p.enrollment_id for p in planned], [p.subscriber_id for p in planned],
                       [p.sequence_key for p in planned], [p.seq_no for p in planned],
                       [p.step_key for p in planned], [p.variant for p in planned],
                       [p.nudge for p in planned], [p.due_at for p in planned],
                       [p.window_end_at for p in planned]):
            pg_array(column)

    parts: list[tuple[str, Callable[[], Any]]] = [
        ("render (the floor's work)", render),
        ("decide (refusals, step, nudge) and render", decide),
        ("signing one email's links (part of render)", sign),
        ("sending marks: records and arrays", sending),
        ("SendGrid request body", body),
        ("answers to outcomes", outcomes),
        ("outcome arrays", record_arrays),
        ("went-out records", went_out),
        ("next emails: plan and arrays", plan),
    ]
    timed = [(name, best(work, args.repeat) / n * 1e6) for name, work in parts]
    floor = timed[0][1]
    print(f"{n} emails a batch, best of {args.repeat}; microseconds per email")
    print("| part | µs / email | × render |")
    print("|---|---:|---:|")
    for name, micros in timed:
        print(f"| {name} | {micros:.1f} | {micros / floor:.2f} |")
    deciding = timed[1][1] - floor
    rest = sum(m for _, m in timed[3:])  # signing is part of render
    print(f"| deciding alone (decide − render) | {deciding:.1f} | {deciding / floor:.2f} |")
    print(f"| all non-rendering parts above | {deciding + rest:.1f} | "
          f"{(deciding + rest) / floor:.2f} |")


if __name__ == "__main__":
    main()
