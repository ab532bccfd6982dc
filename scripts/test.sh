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

# A test process killed by V8 itself (SIGTRAP/SIGSEGV/SIGABRT: "Check failed: jit_page.has_value()", an open
# V8 bug in its JIT-page registry when PGlite's WebAssembly is instantiated and freed many times in one process,
# nodejs/node#64500) is not a test failure: when that is the only thing that went wrong, the test files it was
# running are run once more, and their result is the suite's. Any failed test still fails the suite.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
pnpm -s test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  plain="$(sed 's/\x1b\[[0-9;]*m//g' "$log")"
  crashed="$(grep -oE 'Worker exited unexpectedly with signal SIG(TRAP|SEGV|ABRT) during [a-z]+ state while running test file [^ ]+' <<<"$plain" | awk '{print $NF}' | sort -u || true)"
  if [ -n "$crashed" ] && ! grep -Eq '^ *(Test Files|Tests) .*[0-9]+ failed' <<<"$plain" \
    && [ "$(grep -c 'Worker exited unexpectedly' <<<"$plain")" -eq "$(grep -c 'Worker exited unexpectedly with signal SIG\(TRAP\|SEGV\|ABRT\)' <<<"$plain")" ]; then
    echo "test.sh: V8 crashed a test process (nodejs/node#64500); running again:" $crashed >&2
    exec pnpm -s test $crashed
  fi
  exit "$status"
fi
