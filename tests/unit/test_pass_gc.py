"""A dispatch pass keeps the garbage collector's work small, and undoes that when it ends."""

from __future__ import annotations

import gc
import sys
import threading

from drip.dispatch import PASS_GC_THRESHOLD, PASS_SWITCH_INTERVAL, fewer_collections


def test_a_pass_freezes_the_heap_and_collects_less_often_then_undoes_both() -> None:
    before, switch = gc.get_threshold(), sys.getswitchinterval()
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        assert sys.getswitchinterval() == PASS_SWITCH_INTERVAL != switch
        assert gc.get_threshold() == (PASS_GC_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 1000  # what was alive at the start is left out
        gc.collect()  # a full collection still works, and leaves the frozen objects be
        assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == switch


def test_overlapping_passes_undo_it_only_when_the_last_one_ends() -> None:
    before = gc.get_threshold()
    first_in, second_done, first_may_end = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            first_may_end.wait(10)
        seen.append(gc.get_threshold())

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with fewer_collections():
        pass
    second_done.set()
    assert gc.get_threshold()[0] == PASS_GC_THRESHOLD  # the first pass is still running
    assert gc.get_freeze_count() > 0
    first_may_end.set()
    thread.join(10)
    assert seen == [before]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
