"""mjgate's Prometheus metrics: one declared API (`Metrics`) against an injected registry.

Two kinds of series (docs/observability.md lists every one):

- **process series**: counters and histograms this replica moved (requests, tasks, upstream
  calls, store errors, webhooks, notifications, account events). Summed across replicas.
- **pool series**: gauges read from Redis at scrape time. The `/metrics` handler fetches one
  `PoolSnapshot` (`Catalog.pool_snapshot`: at most two Redis round trips whatever the pool size)
  and hands it to `Metrics.set_pool`; `PoolCollector` turns the latest one into gauges. Every
  replica reports the same pool, so dashboards take `max`. `set_pool(None)` (Redis unreachable)
  makes the scrape report `mjgate_store_up 0` and no pool series, never an error.

Every label is bounded: values outside a label's known set are reported as `other`, and no label
ever holds a client key, task id, prompt or URL. Per-account series (`bot_id`) are on by default
and off with `per_account=False` (`MJGATE_METRICS_PER_ACCOUNT`).

The package: `process` declares `Metrics` (every series, the process series' methods),
`pool` the collector of the pool series, `labels` every label's bounded set and the buckets.
"""

from gateway.metrics.process import Metrics

__all__ = ["Metrics"]
