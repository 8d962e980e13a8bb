#!/usr/bin/env bash
# `npm run down`: stop the apps `npm run up` started (SIGTERM, so they drain), then Kafka and the
# embedded Postgres.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

stop_pid() {
  local name=$1 pidfile=$2
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid deadline=$((SECONDS + 30))
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name did not stop within 30 s; killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  echo "stopped $name"
}

# Reverse order: the gateway stops taking requests before the services behind it go.
for (( i=${#APPS[@]}-1; i>=0; i-- )); do
  stop_pid "${APPS[$i]}" "$run_dir/${APPS[$i]}.pid"
done
bash infra/kafka/kafka.sh stop
# The embedded Postgres, if `npm run up` started one (a DATABASE_URL or local server is left alone).
node --require ./scripts/register-swc.js scripts/local-postgres.ts stop
rm -f "$run_dir/database.env"
