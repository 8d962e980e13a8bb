#!/usr/bin/env bash
# `npm run test:faults`: the fault suite (test/faults/*.faults.spec.ts) against real Postgres and a
# real Kafka broker. Starts the shared broker itself when none is running (and stops it again
# after); the scenarios that stop a broker or a Postgres server start their own on other ports.
# Extra arguments go to jest (e.g. `npm run test:faults -- -t projector`). FAULT_REPEATS sets how
# many times each fault is injected (default 3). Figures: tmp/reliability/*.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
export NX_DAEMON=false

install_if_needed

use_kafka_and_postgres

echo "== build"
npm run -s build

results="$root/tmp/test-results"
mkdir -p "$results" "$root/tmp/reliability"
rm -f "$root"/tmp/reliability/{kill,sigterm,outages,messages}*.json
echo "== fault suite"
started=$SECONDS
status=0
npx jest -c jest.faults.config.js --ci --json --outputFile="$results/faults.json" "$@" || status=1
echo "== fault suite took $((SECONDS - started)) s; figures in tmp/reliability/"
node -e '
  const fs = require("fs");
  const dir = process.argv[1];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json") && !f.endsWith("-logs.json")).sort()) {
    for (const [name, r] of Object.entries(JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8")))) {
      const faults = Object.entries(r.faults ?? {}).map(([k, n]) => `${k} x${n}`).join(", ");
      console.log(`${name}: ${faults || "-"} | ${r.acceptedVsFound ?? ""} | duplicates in views ${r.duplicatesInViews ?? "-"}, on topic ${r.duplicatesOnTopic ?? "-"} | rebuild differences ${r.rebuild?.differences ?? "-"}`);
    }
  }
' "$root/tmp/reliability"
exit $status
