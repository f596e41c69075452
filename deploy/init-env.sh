#!/bin/sh
# Writes the secrets of the compose stack to an env file (default: .env beside this script,
# i.e. deploy/.env), readable by its owner only, and prints them once. It never overwrites an
# existing file: delete it first to start over (Grafana and the HA override's sentinels keep
# the passwords they were first started with in their volumes: `docker compose down -v`
# forgets those too, with the data).
#
#   sh deploy/init-env.sh [path/to/env-file]
#   docker compose --env-file deploy/.env -f deploy/compose.yaml up
set -eu

target="${1:-$(dirname "$0")/.env}"
if [ -e "$target" ]; then
    echo "init-env: $target exists; kept as it is (delete it to make new secrets)" >&2
    exit 1
fi

# 32 random bytes as 64 hex characters: safe in URLs, config files and shell words.
random_hex() {
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

umask 077
{
    echo "# mjgate compose secrets, written by deploy/init-env.sh. Keep this file private."
    echo "MJGATE_ADMIN_TOKEN=$(random_hex)"
    echo "MJGATE_CLIENT_KEYS=$(random_hex)"
    echo "MJGATE_WEBHOOK_SECRET=$(random_hex)"
    echo "REDIS_PASSWORD=$(random_hex)"
    echo "REDIS_SENTINEL_PASSWORD=$(random_hex)"
    echo "GRAFANA_ADMIN_PASSWORD=$(random_hex)"
    echo "# Against GoAPI (instead of the emulator), uncomment and fill in:"
    echo "# GOAPI_API_KEY="
    echo "# GOAPI_BASE_URL=https://api.goapi.ai"
    echo "# MJGATE_POOL=/path/to/pool.yaml"
} > "$target"
chmod 600 "$target"

echo "init-env: wrote $target (mode 600). Shown once; they are in that file from now on:"
grep -E '^[A-Z_]+=' "$target" | sed 's/^/  /'
