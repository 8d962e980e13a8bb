#!/usr/bin/env bash
# `npm run cli -- <command>`: the operator CLI, built first when the build is missing or stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
main=dist/apps/cli/src/main.js
if [ ! -f "$main" ] || [ -n "$(find apps libs -name '*.ts' -newer "$main" -print -quit 2>/dev/null)" ]; then
  npm run -s build >&2
fi
exec node "$main" "$@"
