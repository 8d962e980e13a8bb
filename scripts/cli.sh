#!/usr/bin/env bash
# `npm run cli -- <command>`: the operator CLI, built first when the build is missing or stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
main=dist/apps/cli/src/main.js
if [ ! -f "$main" ] || [ -n "$(find apps libs -name '*.ts' -newer "$main" -print -quit 2>/dev/null)" ]; then
  npm run -s build >&2
fi
# The database `npm run up` chose (it may be the embedded one, on its own port), unless DATABASE_URL is set.
if [ -z "${DATABASE_URL:-}" ] && [ -f "${FLOWRUNS_RUN_DIR:-$root/.run}/database.env" ]; then
  export "$(cat "${FLOWRUNS_RUN_DIR:-$root/.run}/database.env")"
fi
exec node "$main" "$@"
