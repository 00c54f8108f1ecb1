#!/usr/bin/env bash
# `npm run test:all`: every suite, each run to its end even when an earlier one failed.
#   npm test             the everyday suite: in-process, loopback sockets, Redis and NATS
#   npm run test:system  Chromium, the packed package, node and broker processes killed and restarted
#   npm run test:deep    the property and fuzz suites with five times the random cases, the bench smoke run
# Exits non-zero when any of them failed. With PROTOCAST_TEST_REPORTS=DIR each also writes a
# JSON report into DIR (vitest.config.ts).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
for suite in test test:system test:deep; do
  echo "::: npm run $suite"
  npm run --silent "$suite" || failed+=("$suite")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test:all: failed: ${failed[*]}"
  exit 1
fi
echo "test:all: every suite passed"
