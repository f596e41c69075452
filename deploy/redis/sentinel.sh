#!/bin/sh
# Starts one Redis Sentinel of deploy/compose.redis-ha.yaml. A sentinel rewrites its own
# config file as it learns (replicas, other sentinels, the current primary after a failover),
# so the file is written only the first time, in the sentinel's volume, and kept after that.
#
# Environment: REDIS_PASSWORD (the data nodes' requirepass), REDIS_SENTINEL_PASSWORD (the
# sentinels' own), SENTINEL_ANNOUNCE (the name or address the other sentinels and mjgate use
# for this one). Optional: SENTINEL_CONF (/data/sentinel.conf), SENTINEL_PORT (26379),
# SENTINEL_SERVICE (mjgate), PRIMARY_HOST (redis), PRIMARY_PORT (6379), SENTINEL_QUORUM (2),
# SENTINEL_DOWN_AFTER_MS (5000).
set -eu

conf="${SENTINEL_CONF:-/data/sentinel.conf}"
service="${SENTINEL_SERVICE:-mjgate}"
if [ ! -f "$conf" ]; then
    umask 077
    cat > "$conf" <<CONF
port ${SENTINEL_PORT:-26379}
dir $(dirname "$conf")
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SENTINEL_ANNOUNCE:?name of this sentinel for the others}
sentinel monitor $service ${PRIMARY_HOST:-redis} ${PRIMARY_PORT:-6379} ${SENTINEL_QUORUM:-2}
sentinel auth-pass $service ${REDIS_PASSWORD:?the data nodes password}
sentinel down-after-milliseconds $service ${SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout $service 30000
sentinel parallel-syncs $service 1
requirepass ${REDIS_SENTINEL_PASSWORD:?the sentinels own password}
sentinel sentinel-pass ${REDIS_SENTINEL_PASSWORD}
CONF
fi
exec redis-server "$conf" --sentinel
