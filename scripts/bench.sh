#!/usr/bin/env bash
# `npm run bench [-- --profile quick|full] [--only ingest,list,bulk,purge,rebuild]`: the benchmark
# harness (scripts/bench/) against the built apps. Starts the Kafka broker itself when none is
# running (and stops it again after), like scripts/test.sh. Never part of `npm test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
export NX_DAEMON=false
export KAFKAJS_NO_PARTITIONER_WARNING=1

install_if_needed

use_kafka_and_postgres BENCH_DATABASE_URL

echo "== build"
npm run -s build
node dist/scripts/bench/main.js "$@"
