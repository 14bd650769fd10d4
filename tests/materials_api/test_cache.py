"""The in-process cache is bounded: a city's millions of keys cannot grow it past its limit."""

from materials_api.platform.cache import TtlCache
from chain.clock import MovableClock


def test_the_cache_keeps_at_most_its_limit_and_drops_the_least_recently_used():
    cache = TtlCache(None, max_entries=3)
    for k in "abc":
        cache.get(k, lambda k=k: k.upper())
    cache.get("a", lambda: "never computed")  # a is used again: b is now the oldest
    cache.get("d", lambda: "D")
    assert len(cache) == 3
    assert cache.peek("b") is None and cache.peek("a")[1] == "A" and cache.peek("d")[1] == "D"
    for n in range(10_000):
        cache.put(n, n)
    assert len(cache) == 3


def test_a_value_is_computed_again_after_its_time():
    clock = MovableClock()
    cache = TtlCache(0.05, clock=clock)
    calls = []
    compute = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert cache.get("k", compute) == 1 and cache.get("k", compute) == 1
    clock.advance(0.06)
    assert cache.get("k", compute) == 2
    cache.forget("k")
    assert cache.get("k", compute) == 3


def test_expired_entries_leave_as_new_ones_come_so_memory_follows_the_keys_in_use():
    clock = MovableClock()
    cache = TtlCache(0.05, max_entries=50_000, clock=clock)
    for n in range(1_000):
        cache.put(("old", n), n)
    clock.advance(0.06)
    for n in range(400):  # each put drops a few of the expired ones
        cache.put(("new", n), n)
    assert len(cache) <= 1_000 + 400 - 4 * 250
    assert cache.peek(("new", 399))[1] == 399
