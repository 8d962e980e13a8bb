#!/usr/bin/env bash
# `npm run up`: install what is missing, start Kafka, choose Postgres (starting the embedded one when
# there is none), migrate, build, start the five apps in the background, wait until each
# /health/ready answers, and print the gateway URL and a demo API key.
# Running it again while everything is up changes nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
[ -f .env ] && set -a && source .env && set +a

gateway="http://127.0.0.1:$(port_of api-gateway)"
all_up=true
for app in "${APPS[@]}"; do
  alive "$run_dir/$app.pid" && ready "$(port_of "$app")" || all_up=false
done
if $all_up; then
  echo "Flow Runs is already up; nothing changed."
  echo "Gateway: $gateway   (stop with: npm run down)"
  echo "Create a key: npm run cli -- api-keys:create --project demo"
  exit 0
fi

install_if_needed
mkdir -p "$run_dir/logs"

bash infra/kafka/kafka.sh start

# DATABASE_URL when set; else a server answering on 127.0.0.1:5432; else the embedded Postgres
# (scripts/local-postgres.ts, data in .cache/postgres/), started here and stopped by `npm run down`.
chosen="$(node --require ./scripts/register-swc.js scripts/local-postgres.ts choose)"
export "${chosen?}"
if ! postgres_reachable; then
  echo "error: Postgres is not reachable at $DATABASE_URL (set DATABASE_URL)" >&2
  exit 1
fi
# So that `npm run cli` (scripts/cli.sh) finds the same database afterwards.
(umask 077 && echo "$chosen" >"$run_dir/database.env")

echo "building…"
npm run -s build
node dist/apps/cli/src/main.js db:migrate
node dist/apps/cli/src/main.js topics:create

for app in "${APPS[@]}"; do
  pidfile="$run_dir/$app.pid"
  if alive "$pidfile"; then
    echo "$app already running (pid $(cat "$pidfile"))"
    continue
  fi
  nohup node "dist/apps/$app/src/main.js" >>"$run_dir/logs/$app.log" 2>&1 &
  echo $! >"$pidfile"
  echo "started $app (pid $!, port $(port_of "$app"), log .run/logs/$app.log)"
done
for app in "${APPS[@]}"; do
  wait_ready "$app" "$(port_of "$app")" "$run_dir/$app.pid" 90
  echo "$app ready"
done

echo
echo "Flow Runs is up."
echo "Gateway: $gateway   (API under $gateway/api/v1, health at $gateway/health/ready)"
echo "Demo project API key (project 'demo'; shown once):"
node dist/apps/cli/src/main.js api-keys:create --project demo | tail -n 1
