"""A pure-Python model of the pool's rules: the oracle the stateful test checks Redis against.

It states the rules of docs/routing.md (pacing included: the phase by local wall time
straight from the profile, counts reset at local midnight) as plainly as possible (sorting
whole lists, exact fractions), never as the scripts compute them (indexes, packed scores). It
lives in the tests only: the Lua scripts are the single implementation in the product.
Decisions are tuples: ('R', bot_id, mode, cost, decision, staged) | ('S', reason) |
('E', code). Times are unix milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import string
from dataclasses import dataclass, field
from fractions import Fraction

from routing.model import AccountState, Plan, Setting, Strategy
from routing.pacing import ACTIVE, OFF, Pacing, Tier, local_midnights, phase_at, plan

Decision = tuple[object, ...]
PERIOD_MS = 30 * 86400 * 1000
VQ = 2**20  # virtual time of one staged task at weight 1
KEY_LOOK = 4  # staged tasks of one key looked at per turn


@dataclass
class Account:
    bot_id: int
    plan: Plan
    declared_setting: Setting
    setting: Setting
    state: AccountState
    fast_slots: int
    relax_slots: int
    weight: int
    monthly: int
    left: int
    renews_at: int | None = None
    until: int | None = None
    reserved: int = 0
    fast_in_flight: int = 0
    relax_in_flight: int = 0
    total: int = 0  # fast time since the last reset: left + reserved + consumed
    consumed: int = 0
    # Pacing: the profile, jobs counted since the last local midnight (which `day_end` is),
    # and the end of the gap the last submission started.
    profile: Pacing | None = None
    fast_today: int = 0
    relax_today: int = 0
    day_end: int = 0
    gap_until: int | None = None

    def __post_init__(self) -> None:
        self.total = self.left

    # -- pacing, stated plainly -------------------------------------------------------------
    def catch_up(self, now: int) -> None:
        """Counts reset at local midnight; a gap ends at its time."""
        if self.profile is None:
            return
        if now >= self.day_end:
            self.fast_today = self.relax_today = 0
            self.day_end = local_midnights(self.profile, now)[0]
        if self.gap_until is not None and self.gap_until <= now:
            self.gap_until = None

    def set_profile(self, profile: Pacing | None, now: int) -> None:
        self.catch_up(now)
        if profile is None:
            self.fast_today = self.relax_today = 0
            self.gap_until = None
        else:
            self.day_end = local_midnights(profile, now)[0]
            # A running gap ends no later than the new profile's longest gap from now.
            longest = round(profile.min_gap_seconds * 1000) + round(
                profile.gap_jitter_seconds * 1000
            )
            if self.gap_until is not None and self.gap_until > now + longest:
                self.gap_until = now + longest if longest else None
        self.profile = profile

    @property
    def backup(self) -> bool:
        return self.profile is not None and self.profile.tier is Tier.BACKUP

    def phase(self, now: int) -> str:
        return ACTIVE if self.profile is None else phase_at(self.profile, now)

    def capped(self, cls: str) -> bool:
        if self.profile is None:
            return False
        if cls == "relax":
            cap, count = self.profile.relax_cap, self.relax_today
        else:
            cap, count = self.profile.fast_cap, self.fast_today
        return cap is not None and count >= cap

    def root_ok(self, cls: str, now: int) -> bool:
        return self.phase(now) == ACTIVE and self.gap_until is None and not self.capped(cls)

    def held_by(self, cls: str, now: int) -> str:
        phase = self.phase(now)
        if phase != ACTIVE:
            return "paced:outside_hours" if phase == OFF else "paced:actions_only"
        return "paced:daily_cap" if self.capped(cls) else "paced:gap"

    def next_change(self, now: int) -> float:
        """When pacing next changes something for this account (ms)."""
        assert self.profile is not None
        times = [self.day_end, self.gap_until, plan(self.profile, now).until]
        return min(t for t in times if t is not None)

    def take(self, kind: str, mode: str, task_id: str, now: int) -> int | None:
        """A submission: checks the rules it must meet, then counts it and starts a gap.
        Returns the day it was counted in (its end), None when not counted."""
        if self.profile is None:
            return None
        day = None
        cls = "relax" if mode == "relax" else "fast"
        if kind == "root":
            assert self.root_ok(cls, now)
        else:
            assert self.phase(now) != OFF
            assert not (self.profile.caps_count_children and self.capped(cls))
        if kind == "root" or self.profile.caps_count_children:
            day = self.day_end
            if cls == "relax":
                self.relax_today += 1
            else:
                self.fast_today += 1
        jitter_ms = round(self.profile.gap_jitter_seconds * 1000)
        gap = round(self.profile.min_gap_seconds * 1000)
        if jitter_ms:
            tail = task_id[-8:]
            if len(tail) == 8 and all(c in string.hexdigits for c in tail):
                bits = int(tail, 16)  # a UUID's last 8 hex digits: random already
            else:
                bits = int(hashlib.sha1(task_id.encode()).hexdigest()[:8], 16)
            gap += bits % (jitter_ms + 1)
        self.gap_until = now + gap if gap > 0 else None
        return day

    def untake(self, mode: str, day: int | None) -> None:
        """A refused submission: its count back, if counted in the account's today."""
        if day is None or day != self.day_end:
            return
        if mode == "relax":
            self.relax_today = max(0, self.relax_today - 1)
        else:
            self.fast_today = max(0, self.fast_today - 1)

    @property
    def fast_eligible(self) -> bool:
        return self.state is AccountState.ACTIVE and self.setting is Setting.FAST and self.left > 0

    @property
    def relax_capable(self) -> bool:
        return (
            self.state is AccountState.ACTIVE
            and self.plan is not Plan.BASIC
            and self.relax_slots > 0
        )

    def reset_fast(self, seconds: int) -> None:
        """Midjourney's figure for the account; what is in flight is part of it."""
        self.left = max(0, seconds - self.reserved)
        self.total, self.consumed = self.left + self.reserved, 0
        self.setting = Setting.RELAX if seconds <= 0 else self.declared_setting


@dataclass
class Held:
    bot_id: int
    mode: str
    cost: int
    lease: int
    day: int | None = None  # the day pacing counted it in


@dataclass
class Waiting:
    task_id: str
    kind: str
    mode: str
    cost: int
    parent: int
    exclude: frozenset[int]
    client: str
    deadline: int
    lease: int
    weight: int = 1


@dataclass
class Pool:
    """Staged work: one FIFO per client key; keys take turns by start-time fair queueing:
    the key with the lowest virtual start tag (ties: the lower client id) goes next and its
    tag moves on by VQ // weight; a key that gets staged work starts at max(virtual time,
    where its last turn left it); the virtual time is the tag of the latest turn taken."""

    strategy: Strategy = Strategy.LEAST_BUSY
    accounts: dict[int, Account] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    queue: list[Waiting] = field(default_factory=list)  # arrival order
    tags: dict[str, int] = field(default_factory=dict)  # keys with staged work: start tag
    finish: dict[str, int] = field(default_factory=dict)  # keys without: where they left off
    vt: int = 0

    # -- choosing ---------------------------------------------------------------------------
    def _fast_order(self, a: Account) -> tuple[object, ...]:
        if self.strategy is Strategy.MOST_FAST_LEFT:
            return (-a.left, str(a.bot_id))
        if self.strategy is Strategy.WEIGHTED:
            return (Fraction(a.fast_in_flight, a.weight), -min(a.left, 2**23 - 1), str(a.bot_id))
        return (Fraction(a.fast_in_flight, a.fast_slots), -a.left, str(a.bot_id))

    def _relax_order(self, a: Account) -> tuple[object, ...]:
        share = a.weight if self.strategy is Strategy.WEIGHTED else a.relax_slots
        return (Fraction(a.relax_in_flight, share), str(a.bot_id))

    def _fast_tier(self, usable: list[Account], mode: str, cost: int, now: int) -> Decision | None:
        ok = [a for a in usable if a.fast_eligible and a.root_ok("fast", now)]
        free = [a for a in ok if a.fast_in_flight < a.fast_slots]
        for a in sorted(free, key=self._fast_order):
            if a.left >= cost:
                return ("R", a.bot_id, mode, cost, "routed")
        if any(a.left >= cost for a in ok):
            return ("S", "fast_slots_busy")
        held = [a for a in usable if a.fast_eligible and not a.root_ok("fast", now)]
        if held:  # any with the fast time: the first to change among the first paced ones
            top = max(held, key=lambda a: (a.left, str(a.bot_id)))
            if top.left >= cost:
                enough = {a.bot_id for a in held if a.left >= cost}
                first = next((a for a in self._paced_first(now) if a.bot_id in enough), top)
                return ("S", first.held_by("fast", now))
        return None

    def _paced_first(self, now: int) -> list[Account]:
        """The first HELD_LOOK (16) paced accounts by their next pacing change (`ix:pace`:
        every paced account, excluded ones included; ties by bot_id as text)."""
        paced = [a for a in self.accounts.values() if a.profile is not None]
        return sorted(paced, key=lambda a: (a.next_change(now), str(a.bot_id)))[:16]

    def _relax_tier(self, usable: list[Account], decision: str, now: int) -> Decision | None:
        capable = [a for a in usable if a.relax_capable]
        ok = [a for a in capable if a.root_ok("relax", now)]
        free = [a for a in ok if a.relax_in_flight < a.relax_slots]
        if free:
            return ("R", min(free, key=self._relax_order).bot_id, "relax", 0, decision)
        if ok:
            return ("S", "relax_slots_busy")
        held = [a for a in capable if not a.root_ok("relax", now)]
        if held:  # the one whose pacing changes first
            first = min(held, key=lambda a: (a.next_change(now), str(a.bot_id)))
            return ("S", first.held_by("relax", now))
        return None

    @staticmethod
    def _by_tier(
        order: list[tuple[str, list[Account]]], why: str, attempt: object
    ) -> Decision | None:
        """Primaries first unless none is active; backups take work only when the primaries
        have nothing that could run it (fast time, relax capability)."""
        assert callable(attempt)
        staged = None
        for tier, accounts in order:
            d = attempt(accounts)
            if d is None:
                continue
            if d[0] == "R":
                if tier == "backup" and d[4] == "routed":
                    return (*d[:4], f"backup:{why}")
                return d
            if tier == order[0][0] == "primary":
                return d
            staged = staged or d
        return staged

    def decide_root(self, mode: str, cost: int, exclude: frozenset[int], now: int = 0) -> Decision:
        for a in self.accounts.values():
            a.catch_up(now)
        usable = [a for a in self.accounts.values() if a.bot_id not in exclude]
        primaries = [a for a in usable if not a.backup]
        backups = [a for a in usable if a.backup]
        if any(a.state is AccountState.ACTIVE and a.phase(now) == ACTIVE for a in primaries):
            order = [("primary", primaries), ("backup", backups)]
            why, why_relax = "no_fast_hours", "no_relax_primary"
        else:
            order = [("backup", backups), ("primary", primaries)]
            why = why_relax = "no_active_primary"
        decision = "routed"
        if mode != "relax":
            d = self._by_tier(order, why, lambda accts: self._fast_tier(accts, mode, cost, now))
            if d is not None:
                return d
            decision = "fallback_relax:no_fast_hours"
        d = self._by_tier(order, why_relax, lambda accts: self._relax_tier(accts, decision, now))
        return d if d is not None else ("E", "no_relax_capable_account")

    def decide_child(self, parent: int, mode: str, cost: int, now: int = 0) -> Decision:
        a = self.accounts.get(parent)
        if a is None:
            return ("E", "parent_unavailable", "account_removed")
        if a.state is AccountState.DISABLED:
            return ("E", "parent_unavailable", "account_disabled")
        if a.state in (AccountState.PAUSED, AccountState.COOLING):
            return ("S", "parent_paused")
        decision = "inherited"
        if mode != "relax" and a.setting is Setting.RELAX:
            mode, cost, decision = "relax", 0, "inherited_relax:setting_relax"
        elif mode != "relax" and a.left < cost:
            mode, cost, decision = "relax", 0, "inherited_relax:no_fast_time"
        if mode == "relax" and a.plan is Plan.BASIC:
            return ("E", "parent_unavailable", "no_relax_on_basic")
        a.catch_up(now)
        if a.profile is not None:
            if a.phase(now) == OFF:
                return ("S", "paced:outside_hours")
            if a.profile.caps_count_children and a.capped(mode):
                return ("S", "paced:daily_cap")
        if mode == "relax":
            free = a.relax_in_flight < a.relax_slots
        else:
            free = a.fast_in_flight < a.fast_slots
        return ("R", parent, mode, cost, decision) if free else ("S", "parent_busy")

    # -- doing ------------------------------------------------------------------------------
    def _take(
        self, task_id: str, d: Decision, lease: int, staged: int, kind: str, now: int
    ) -> Decision:
        _, bot_id, mode, cost, decision = d
        a = self.accounts[int(str(bot_id))]
        day = a.take(kind, str(mode), task_id, now)
        if mode == "relax":
            a.relax_in_flight += 1
        else:
            a.fast_in_flight += 1
            a.left -= int(str(cost))
            a.reserved += int(str(cost))
        self.held[task_id] = Held(a.bot_id, str(mode), int(str(cost)), lease, day)
        return ("R", bot_id, mode, cost, decision, staged)

    def _stage(self, d: Decision, entry: Waiting, limit: int) -> Decision:
        if sum(1 for w in self.queue if w.client == entry.client) >= limit:
            return ("E", "staged_limit")
        self.queue.append(entry)
        if entry.client not in self.tags:
            self.tags[entry.client] = max(self.vt, self.finish.pop(entry.client, 0))
        return d

    def _unqueue(self, entry: Waiting) -> None:
        self.queue.remove(entry)
        if not any(w.client == entry.client for w in self.queue):
            self.finish[entry.client] = self.tags.pop(entry.client)

    def paced_past(self, d: Decision, timeout: int, now: int) -> Decision | None:
        """A staging pacing would hold past the timeout: nothing time-driven (a pacing
        change or a renewal of an active account, a cooling deadline) comes within it. The
        error, else None."""
        if d[0] != "S" or not str(d[1]).startswith("paced:"):
            return None
        active = [a for a in self.accounts.values() if a.state is AccountState.ACTIVE]
        times = [a.next_change(now) for a in active if a.profile is not None]
        times += [a.renews_at for a in active if a.renews_at is not None]
        for a in self.accounts.values():
            if a.state is AccountState.COOLING and a.until is not None:
                times.append(a.until)
        if not times or min(times) <= now + timeout:
            return None
        return ("E", "paced", d[1], math.ceil((min(times) - now) / 1000))

    def reserve_root(
        self,
        task_id: str,
        mode: str,
        cost: int,
        client: str,
        exclude: frozenset[int],
        lease: int,
        limit: int,
        timeout: int,
        now: int,
        weight: int = 1,
    ) -> Decision:
        d = self.decide_root(mode, cost, exclude, now)
        if d[0] == "R":
            return self._take(task_id, d, now + lease, 0, "root", now)
        refused = self.paced_past(d, timeout, now)
        if refused is not None:
            return refused
        if d[0] == "S":
            entry = Waiting(
                task_id, "root", mode, cost, 0, exclude, client, now + timeout, lease, weight
            )
            return self._stage(d, entry, limit)
        return d

    def reserve_child(
        self,
        task_id: str,
        parent: int,
        mode: str,
        cost: int,
        client: str,
        lease: int,
        limit: int,
        timeout: int,
        now: int,
        weight: int = 1,
    ) -> Decision:
        d = self.decide_child(parent, mode, cost, now)
        if d[0] == "R":
            return self._take(task_id, d, now + lease, 0, "child", now)
        refused = self.paced_past(d, timeout, now)
        if refused is not None:
            return refused
        if d[0] == "S":
            entry = Waiting(
                task_id,
                "child",
                mode,
                cost,
                parent,
                frozenset(),
                client,
                now + timeout,
                lease,
                weight,
            )
            return self._stage(d, entry, limit)
        return d

    def settle(self, task_id: str, outcome: str) -> tuple[int, str, str, int] | None:
        held = self.held.pop(task_id, None)
        if held is None:
            return None
        refunded = 0
        a = self.accounts.get(held.bot_id)
        if a is not None:
            if held.mode == "relax":
                a.relax_in_flight = max(0, a.relax_in_flight - 1)
            else:
                a.fast_in_flight = max(0, a.fast_in_flight - 1)
                kept = min(held.cost, a.reserved)
                a.reserved -= kept
                if outcome == "completed":
                    a.consumed += kept
                else:
                    a.left += kept
                    refunded = kept
            if outcome == "refused":
                a.untake(held.mode, held.day)
            if a.setting is Setting.FAST and a.left <= 0 and a.reserved <= 0:
                a.setting = Setting.RELAX
        return (held.bot_id, held.mode, outcome, refunded)

    def dispatch(self, limit: int, now: int, window: int = 32) -> list[tuple[str, Decision]]:
        out: list[tuple[str, Decision]] = []
        taken = looked = 0
        blocked: set[str] = set()
        while taken < limit and looked < window:
            turns = sorted(
                (tag, client) for client, tag in self.tags.items() if client not in blocked
            )
            if not turns:
                break
            tag, client = turns[0]
            ran = False
            for entry in [w for w in self.queue if w.client == client][:KEY_LOOK]:
                if looked >= window:
                    break
                if entry.deadline <= now:
                    continue
                looked += 1
                if entry.kind == "root":
                    d = self.decide_root(entry.mode, entry.cost, entry.exclude, now)
                else:
                    d = self.decide_child(entry.parent, entry.mode, entry.cost, now)
                if d[0] == "R":
                    self.vt = max(self.vt, tag)
                    self.tags[client] = tag + VQ // entry.weight
                    self._unqueue(entry)
                    taken_d = self._take(entry.task_id, d, now + entry.lease, 1, entry.kind, now)
                    out.append((entry.task_id, taken_d))
                    taken += 1
                    ran = True
                    break
                if d[0] == "E" and entry.kind == "child":  # its parent's account can never
                    self._unqueue(entry)
                    out.append((entry.task_id, ("D", entry.parent, d[2])))
            if not ran:
                blocked.add(client)
        return out

    def cancel(self, task_id: str) -> bool:
        for entry in self.queue:
            if entry.task_id == task_id:
                self._unqueue(entry)
                return True
        return False

    def claim(self, limit: int, claim: int, now: int) -> list[tuple[str, int, str]]:
        due = sorted((h.lease, task_id) for task_id, h in self.held.items() if h.lease <= now)
        out = []
        for _, task_id in due[:limit]:
            held = self.held[task_id]
            held.lease = now + claim
            out.append((task_id, held.bot_id, held.mode))
        return out

    def extend(self, task_id: str, lease: int, now: int) -> bool:
        if task_id not in self.held:
            return False
        self.held[task_id].lease = now + lease
        return True

    def tick(self, now: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
        due = sorted(
            (a.renews_at, str(a.bot_id))
            for a in self.accounts.values()
            if a.renews_at is not None and a.renews_at <= now
        )
        renewed = []
        for _, bot in due:
            a = self.accounts[int(bot)]
            assert a.renews_at is not None
            a.renews_at += ((now - a.renews_at) // PERIOD_MS + 1) * PERIOD_MS
            a.reset_fast(a.monthly)
            renewed.append(a.bot_id)
        cooled = sorted(
            (a.until, str(a.bot_id))
            for a in self.accounts.values()
            if a.state is AccountState.COOLING and a.until is not None and a.until <= now
        )
        for _, bot in cooled:
            self.accounts[int(bot)].state, self.accounts[int(bot)].until = AccountState.ACTIVE, None
        expired = sorted((w.deadline, w.task_id) for w in self.queue if w.deadline <= now)
        for entry in [w for w in self.queue if w.deadline <= now]:
            self._unqueue(entry)
        return tuple(renewed), tuple(int(b) for _, b in cooled), tuple(t for _, t in expired)

    def set_state(self, bot_id: int, state: AccountState, until: int | None) -> None:
        a = self.accounts[bot_id]
        a.state, a.until = state, until if state is AccountState.COOLING else None
