#!/usr/bin/env bash
# `npm run bench [-- --profile quick|full] [--only ingest,list,bulk,purge,rebuild]`: the benchmark
# harness (scripts/bench/) against the built apps; `npm run bench:compare -- --base REV [--repeat N]
# [harness options]`: before/after, REV against this tree, alternated (scripts/bench/compare.ts).
# Starts the Kafka broker itself when none is running (and stops it again after), like
# scripts/test.sh. Never part of `npm test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
export NX_DAEMON=false
export KAFKAJS_NO_PARTITIONER_WARNING=1

install_if_needed

use_kafka_and_postgres BENCH_DATABASE_URL

echo "== build"
npm run -s build
if [ "${1:-}" = compare ]; then
  shift
  node dist/scripts/bench/compare.js "$@"
else
  node dist/scripts/bench/main.js "$@"
fi
