"""The fault injector: each kind draws from a generator of its own, so with a seed its n-th chance fires or not
whatever the other kinds do in between, and every chance and every firing is counted."""

from __future__ import annotations

from widf_local.faults import FaultInjector, FaultPlan

PLAN = FaultPlan(snowflake_unavailable=0.3, s3_slowdown=0.5, seed=13)


def firings(injector: FaultInjector, fault: str, chances: int, *, other: str | None = None) -> list[bool]:
    fired = []
    for _ in range(chances):
        if other:
            injector.fires(other)  # another kind's chance in between, as another thread's request would be
        fired.append(injector.fires(fault))
    return fired


def test_a_kinds_chances_fire_alike_whatever_the_other_kinds_do():
    alone, interleaved = FaultInjector(), FaultInjector()
    alone.apply(PLAN)
    interleaved.apply(PLAN)
    assert firings(alone, "snowflake_unavailable", 40) == firings(interleaved, "snowflake_unavailable", 40, other="s3_slowdown")


def test_every_chance_and_every_firing_is_counted_and_an_unplanned_kind_has_no_chance():
    injector = FaultInjector()
    injector.apply(PLAN)
    fired = firings(injector, "snowflake_unavailable", 40, other="container_killed")  # not planned: probability 0
    report = injector.report()
    assert report["chances"] == {"snowflake_unavailable": 40}
    assert report["injected"] == {"snowflake_unavailable": sum(fired)} and 0 < sum(fired) < 40


def test_a_new_plan_starts_its_kinds_sequences_again_and_keeps_the_counts():
    injector = FaultInjector()
    injector.apply(PLAN)
    first = firings(injector, "s3_slowdown", 20)
    injector.apply(PLAN)
    assert firings(injector, "s3_slowdown", 20) == first
    assert injector.report()["chances"] == {"s3_slowdown": 40}
