#!/usr/bin/env bash
# The test command: installs what it needs (Node >= 22.19 and pnpm into .tools/ when the machine's are
# missing or older, then the locked dependencies), typechecks, lints and runs the whole suite.
# Database tests run on embedded PGlite always, and also on PostgreSQL when SLUICE_TEST_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
pnpm install --frozen-lockfile --reporter=silent
pnpm -s check
pnpm -s lint
pnpm -s test "$@"
