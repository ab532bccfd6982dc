#!/usr/bin/env bash
# The demo: installs what it needs, then generates a month of orders and backfills it on the embedded database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
pnpm install --frozen-lockfile --reporter=silent
pnpm -s demo "$@"
