"""The pool's scripts as one Redis Functions library (routing.functions): what it holds, and
that a call learns nothing from the calls before it (the libraries' locals outlive a call)."""

from __future__ import annotations

from redis.asyncio import Redis

from routing.catalog import Catalog
from routing.keys import Keys
from routing.model import Plan, Strategy
from routing.pipe import Pipe
from routing.prelude import BEGIN
from routing.scripts import SCRIPT_NAMES, pool_library, read
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, needs_functions, reserved, root


def test_the_library_holds_every_pool_script_started_by_begin() -> None:
    library = pool_library()
    assert library.name.startswith("mjgate_") and library.code.startswith(
        f"#!lua name={library.name}\n"
    )
    for name in SCRIPT_NAMES:
        function = library.function(name)
        assert function == f"{library.name}__{name}"
        head = f"redis.register_function('{function}', function(KEYS, ARGV)\n{BEGIN}\n"
        assert head + read("routing", name) in library.code


def test_the_library_is_named_by_its_content() -> None:
    """Two versions sharing a server (a rolling upgrade) call their own code."""
    from routing.functions import build

    one = build({"a": "return 1"})
    assert build({"a": "return 1"}) == one
    other = build({"a": "return 2"})
    assert other.name != one.name and other.function("a") != one.function("a")


async def test_two_pools_called_in_turn_keep_their_own_keys_and_strategy(
    redis: Redis, prefix: str
) -> None:
    """Pools under two prefixes with two strategies, their calls interleaved on one pipe of
    function calls: each decision uses its own pool's strategy and keys."""
    await needs_functions(redis)
    pipe = Pipe.of(redis, functions=True)
    clock = FakeClock()
    stores = [PoolStore(redis, Keys(f"{prefix}:{side}"), clock=clock, pipe=pipe) for side in "ab"]
    try:
        await stores[0].load_scripts()
        assert pipe.scripts.functions
        await Catalog(stores[0]).set_strategy(Strategy.MOST_FAST_LEFT)
        for store in stores:
            await add(store, 1, Plan.PRO, fast_seconds_left=10_000)
            await add(store, 2, Plan.PRO, fast_seconds_left=9_000)
        picks: dict[int, list[int]] = {0: [], 1: []}
        for n in range(4):
            for side, store in enumerate(stores):
                picks[side].append(reserved(await root(store, f"t{n}")).bot_id)
        assert picks[0] == [1, 1, 1, 1]  # most fast left: 10,000 - 3*60 > 9,000
        assert picks[1] == [1, 2, 1, 2]  # least busy: the load evens out
        for side, store in enumerate(stores):
            view = await Catalog(store).get_account(1)
            assert view is not None and view.fast_in_flight == (4 if side == 0 else 2)
    finally:
        for store in stores:
            await store.aclose()
        await pipe.aclose()


async def test_many_pools_in_turn_past_the_key_name_cache(redis: Redis, prefix: str) -> None:
    """The library keeps the key names of the last 64 key bases across calls (accounts.lua's
    KEYSETS): 70 pools called in turn, twice, so the cache fills and is dropped, and every
    reservation still lands on its own pool's account, under its own prefix."""
    await needs_functions(redis)
    pipe = Pipe.of(redis, functions=True)
    stores = [PoolStore(redis, Keys(f"{prefix}:{n}"), clock=FakeClock(), pipe=pipe)
              for n in range(70)]  # fmt: skip
    try:
        await stores[0].load_scripts()
        for n, store in enumerate(stores):
            await add(store, n + 1, Plan.PRO, fast_seconds_left=10_000)
        for round_ in range(2):
            for n, store in enumerate(stores):
                assert reserved(await root(store, f"t{round_}")).bot_id == n + 1
        for n, store in enumerate(stores):
            view = await Catalog(store).get_account(n + 1)
            assert view is not None and view.fast_in_flight == 2
            assert await redis.exists(f"{prefix}:{n}:{{pool}}:res:t1") == 1
    finally:
        for store in stores:
            await store.aclose()
        await pipe.aclose()
