"""Metrics scraped from a live mjgate against the emulator: each moves as it should through
a fast task, an account running out, a fallback, a staged task and an upstream failure; the
live exposition passes promtool and holds every metric the dashboard and alerts query."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.harness import Harness, harness
from tests.test_deploy import METRIC_NAME, SUFFIXES, alert_rules, dashboard_exprs, promtool

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(h: Harness) -> tuple[str, Samples]:
    text = (await h.client.get("/metrics")).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def test_each_metric_moves_through_a_scenario(redis: Redis, prefix: str) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.PRO, fast_seconds_left=60, relax_slots=1),
        AccountSpec(bot_id=2, plan=Plan.BASIC, fast_seconds_left=0),
    )
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        _, before = await scrape(h)
        assert value(before, "mjgate_store_up") == 1
        assert value(before, "mjgate_pool_fast_seconds_remaining") == 60
        assert value(before, "mjgate_account_fast_seconds_remaining", bot_id="1") == 60

        # a fast task, completed: the account runs out of fast time and turns relax
        fast = (await h.create(prompt="a --fast")).json()["data"]
        await h.wait_status(fast["task_id"], "completed")
        _, s = await scrape(h)
        assert value(s, "mjgate_tasks_created_total", decision="routed", effective_mode="fast") == 1
        assert value(s, "mjgate_tasks_finished_total", status="completed", mode="fast") == 1
        assert value(s, "mjgate_task_duration_seconds_count", mode="fast") == 1
        assert value(s, "mjgate_upstream_requests_total", op="create", status="200") == 1
        assert value(s, "mjgate_pool_fast_seconds_remaining") == 0
        assert value(s, "mjgate_accounts", plan="pro", state="active", setting="relax") == 1

        # a fast request with no fast time left anywhere: fallback to relax
        await h.emulator.patch(
            "/_emulator/config", json={"pending_seconds": 60, "processing_seconds": 60}
        )
        fallback = await h.create(prompt="b --fast")
        assert fallback.headers["x-mjgate-decision"] == "fallback_relax:no_fast_hours"
        _, s = await scrape(h)
        assert value(s, "mjgate_tasks_created_total", decision="fallback_relax:no_fast_hours") == 1
        assert value(s, "mjgate_account_in_flight", bot_id="1", mode="relax") == 1
        assert value(s, "mjgate_pool_slots", mode="relax", kind="in_use") == 1

        # the only relax slot is busy: the next one is staged
        staged = await h.create(prompt="c --relax")
        assert staged.json()["data"]["status"] == "staged"
        _, s = await scrape(h)
        assert value(s, "mjgate_staged_tasks") == 1
        assert value(s, "mjgate_tasks_created_total", decision="staged") == 1

        # an upstream failure: counted by its status upstream, answered upstream_unavailable
        h.faulty.faults = [httpx.Response(500, json={"code": 500, "message": "boom"})]
        await h.gate.store.set_fast_time(1, 600, reason="test")
        failed = await h.create(prompt="d --fast")
        assert failed.status_code == 502
        _, s = await scrape(h)
        assert value(s, "mjgate_upstream_requests_total", op="create", status="500") == 1
        assert (
            value(
                s, "mjgate_http_requests_total", route="/api/v1/task", method="POST", status="502"
            )
            == 1
        )
        assert value(s, "mjgate_http_request_duration_seconds_count", route="/api/v1/task") == 4


async def test_live_exposition_passes_promtool_and_feeds_the_dashboard(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, emulator_config=EmulatorConfig.instant()) as h:
        await h.create(prompt="x --fast")
        await h.client.get("/api/v1/task/unknown-id", headers={"x-api-key": "nope-nope"})
        text, _ = await scrape(h)
    assert promtool("check", "metrics", stdin=text.encode()).strip() == ""
    live: set[str] = set()
    for family in text_string_to_metric_families(text):
        live.update(family.name + suffix for suffix in SUFFIXES[family.type])
    queried = {
        name
        for expr in [*dashboard_exprs(), *(r["expr"] for r in alert_rules())]
        for name in METRIC_NAME.findall(expr)
    }
    assert queried - live == set()


async def test_series_do_not_grow_with_clients_or_tasks(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, emulator_config=EmulatorConfig.instant()) as h:
        for n in range(5):
            await h.create(prompt=f"x{n} --fast")
            await h.client.get(f"/api/v1/task/first-{n}", headers={"x-api-key": f"k-{n}-xxxx"})
        await scrape(h)  # the scrape's own request series
        _, first = await scrape(h)
        for n in range(40):
            await h.create(prompt=f"y{n} --fast")
            await h.client.get(f"/api/v1/task/id-{n}", headers={"x-api-key": f"key-{n}-xx"})
        _, second = await scrape(h)
    assert set(second) == set(first)  # the same series: none per task, id or client


async def test_every_series_the_dashboard_and_alerts_query_exists_on_a_fresh_process(
    redis: Redis, prefix: str
) -> None:
    """Before any task or error, the first scrape already has a sample of every metric the
    dashboard and the alerts query, so no panel shows "No data" and `increase()` sees the
    first event (a counter born at 1 is invisible to it)."""
    async with harness(redis, prefix, emulator_config=EmulatorConfig.instant()) as h:
        text, _ = await scrape(h)
    with_samples: set[str] = set()
    for family in text_string_to_metric_families(text):
        with_samples.update(sample.name for sample in family.samples)
    queried = {
        name
        for expr in [*dashboard_exprs(), *(r["expr"] for r in alert_rules())]
        for name in METRIC_NAME.findall(expr)
    }
    missing = sorted(queried - with_samples)
    assert missing == [], ", ".join(missing)
