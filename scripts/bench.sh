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

started_kafka=false
if ! bash infra/kafka/kafka.sh status >/dev/null 2>&1; then
  bash infra/kafka/kafka.sh start
  started_kafka=true
fi
cleanup() { if $started_kafka; then bash infra/kafka/kafka.sh stop || true; fi; }
trap cleanup EXIT

export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
export BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
if ! DATABASE_URL="$BENCH_DATABASE_URL" postgres_reachable; then
  echo "error: Postgres is not reachable at $BENCH_DATABASE_URL (set BENCH_DATABASE_URL)" >&2
  exit 1
fi

echo "== build"
npm run -s build
node dist/scripts/bench/main.js "$@"
