"""One reactor timer for many deadlines of one length (sessions_app/shared_deadlines.py)."""

import pytest
from twisted.internet.task import Clock

from sessions_app.shared_deadlines import SharedDeadlines


def deadlines(seconds=10):
    clock = Clock()
    return clock, SharedDeadlines(seconds, reactor=clock)


def test_a_deadline_falls_due_after_its_seconds_and_not_before():
    clock, shared = deadlines()
    called = []
    shared.set("a", lambda: called.append("a"))
    clock.advance(9.9)
    assert called == []
    clock.advance(0.1)
    assert called == ["a"]
    assert "a" not in shared


def test_deadlines_set_apart_fall_due_apart_on_one_timer():
    clock, shared = deadlines()
    called = []
    for key in "abc":
        shared.set(key, lambda key=key: called.append((key, clock.seconds())))
        clock.advance(3)
    assert len(clock.getDelayedCalls()) == 1
    clock.pump([1] * 20)
    assert called == [("a", 10), ("b", 13), ("c", 16)]
    assert clock.getDelayedCalls() == []


def test_a_cancelled_deadline_never_calls_and_the_next_still_does():
    clock, shared = deadlines()
    called = []
    shared.set("a", lambda: called.append("a"))
    clock.advance(5)
    shared.set("b", lambda: called.append("b"))
    shared.cancel("a")
    shared.cancel("unknown")
    clock.advance(5)
    assert called == []
    clock.advance(5)
    assert called == ["b"]
    assert len(shared) == 0


def test_setting_a_key_again_restarts_its_deadline():
    clock, shared = deadlines()
    called = []
    shared.set("a", lambda: called.append("a"))
    clock.advance(8)
    shared.set("a", lambda: called.append("a again"))
    clock.advance(8)
    assert called == []
    clock.advance(2)
    assert called == ["a again"]


def test_a_deadline_set_after_all_have_fallen_due_gets_a_timer_again():
    clock, shared = deadlines()
    called = []
    shared.set("a", lambda: called.append("a"))
    clock.advance(10)
    shared.set("b", lambda: called.append("b"))
    clock.advance(10)
    assert called == ["a", "b"]


def test_a_call_that_raises_leaves_the_later_deadlines_their_timer():
    clock, shared = deadlines()
    called = []

    def fail():
        raise RuntimeError("boom")

    shared.set("a", fail)
    clock.advance(1)
    shared.set("b", lambda: called.append("b"))
    with pytest.raises(RuntimeError):
        clock.advance(9)
    clock.advance(1)
    assert called == ["b"]
