"""PoolStore: the pool's state in Redis and the atomic decisions over it (Lua, by SHA).

(Interface fixed; implementation in progress. Each method documents its contract.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from routing.accounts import AccountSpec, AccountStatus
from routing.decisions import LeaseClaim, Outcome, Reservation, Settlement, Staged, TickResult
from routing.keys import Keys
from routing.model import AccountState, Mode, Strategy

Clock = Callable[[], float]


class PoolStore:
    def __init__(self, redis: Redis, keys: Keys, *, clock: Clock = time.time) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock

    async def load_scripts(self) -> None:
        """Register every script (SCRIPT LOAD); calls re-register after SCRIPT FLUSH."""
        raise NotImplementedError

    # -- accounts ---------------------------------------------------------------------------
    async def apply_account(self, spec: AccountSpec) -> str:
        """Create or update an account's definition; returns 'created', 'updated' or
        'unchanged'. Live counters are kept. fast time, setting and state are applied only
        when the declared value differs from the last declared one (re-applying a file
        restores nothing consumed since)."""
        raise NotImplementedError

    async def get_account(self, bot_id: int) -> AccountStatus | None:
        raise NotImplementedError

    async def list_accounts(self) -> list[AccountStatus]:
        raise NotImplementedError

    async def remove_account(self, bot_id: int, *, force: bool = False) -> None:
        raise NotImplementedError

    async def set_state(
        self, bot_id: int, state: AccountState, *, until: float | None = None, reason: str = ""
    ) -> AccountStatus:
        raise NotImplementedError

    async def set_fast_time(self, bot_id: int, seconds: int, *, reason: str = "") -> None:
        raise NotImplementedError

    async def get_strategy(self) -> Strategy:
        raise NotImplementedError

    async def set_strategy(self, strategy: Strategy) -> None:
        raise NotImplementedError

    # -- decisions --------------------------------------------------------------------------
    async def reserve_root(
        self,
        task_id: str,
        mode: Mode,
        cost: int,
        *,
        client_id: str,
        lease_seconds: float,
        staged_limit: int,
        staged_timeout: float,
        exclude: Sequence[int] = (),
    ) -> Reservation | Staged:
        raise NotImplementedError

    async def reserve_child(
        self,
        task_id: str,
        parent_bot_id: int,
        parent_mode: Mode,
        cost: int,
        *,
        client_id: str,
        lease_seconds: float,
        staged_limit: int,
        staged_timeout: float,
    ) -> Reservation | Staged:
        raise NotImplementedError

    async def settle(self, task_id: str, outcome: Outcome) -> Settlement | None:
        raise NotImplementedError

    async def extend_lease(self, task_id: str, seconds: float) -> bool:
        raise NotImplementedError

    async def claim_expired_leases(self, limit: int, claim_seconds: float) -> list[LeaseClaim]:
        raise NotImplementedError

    async def dispatch_staged(self, limit: int, lease_seconds: float) -> list[Reservation]:
        raise NotImplementedError

    async def cancel_staged(self, task_id: str) -> bool:
        raise NotImplementedError

    async def staged_count(self) -> int:
        raise NotImplementedError

    async def tick(self) -> TickResult:
        raise NotImplementedError
