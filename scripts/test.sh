#!/usr/bin/env bash
# `npm test`: lint, then the unit, integration and end-to-end layers against real Postgres and a
# real Kafka broker. Starts the broker itself when none is running (and stops it again after).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
export NX_DAEMON=false

install_if_needed
ensure_chromium

use_kafka_and_postgres

results="$root/tmp/test-results"
rm -rf "$results" && mkdir -p "$results"

echo "== typecheck and build"
npm run -s typecheck
npm run -s build
echo "== lint (module boundaries enforced)"
npm run -s lint
echo "== event docs are current"
node dist/scripts/gen-event-docs.js --check

status=0
for layer in unit int e2e; do
  echo "== $layer tests"
  npx jest -c "jest.$layer.config.js" --ci --json --outputFile="$results/$layer.json" || status=1
done

node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const l of ["unit", "int", "e2e"]) {
    const f = `${process.argv[1]}/${l}.json`;
    if (!fs.existsSync(f)) { failed++; console.log(`${l}: no results (the run did not finish)`); continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    console.log(`${l}: ${r.numPassedTests} passed, ${r.numFailedTests} failed (${r.numTotalTestSuites} suites)`);
    passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites; skipped += r.numPendingTests;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$results"
exit $status
