# Shared by up.sh, down.sh and test.sh: where things run and how to wait for them.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${FLOWRUNS_RUN_DIR:-$root/.run}"
APPS=(command-service projector api-gateway retention flow-worker)

port_of() {
  case "$1" in
    api-gateway) echo "${GATEWAY_PORT:-3000}" ;;
    command-service) echo "${COMMAND_SERVICE_PORT:-3001}" ;;
    projector) echo "${PROJECTOR_PORT:-3002}" ;;
    retention) echo "${RETENTION_PORT:-3003}" ;;
    flow-worker) echo "${FLOW_WORKER_PORT:-3004}" ;;
  esac
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

ready() { curl -fsS -m 3 "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1; }

# wait_ready NAME PORT PIDFILE DEADLINE_SECONDS
wait_ready() {
  local name=$1 port=$2 pidfile=$3 deadline=$((SECONDS + $4))
  until ready "$port"; do
    if ! alive "$pidfile"; then
      echo "error: $name exited while starting; last log lines:" >&2
      tail -n 30 "$run_dir/logs/$name.log" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: $name not ready on :$port after $4 s; last log lines:" >&2
      tail -n 30 "$run_dir/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

postgres_reachable() {
  node -e '
    const { Client } = require("pg");
    const u = new URL(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/flowruns");
    u.pathname = "/postgres";
    const c = new Client({ connectionString: u.toString(), connectionTimeoutMillis: 3000 });
    c.connect().then(() => c.end()).then(() => process.exit(0), () => process.exit(1));'
}

install_if_needed() {
  if [ ! -d "$root/node_modules" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    echo "installing dependencies (npm ci)…"
    (cd "$root" && npm ci --no-audit --no-fund)
  fi
}

# The browser the dashboard's e2e test drives: Debian's chromium package, never a downloaded one.
# Installed when missing and running as root (CI on a fresh machine); otherwise a clear error, so
# the e2e layer cannot pass without having opened the dashboard. CHROMIUM_PATH overrides the path.
ensure_chromium() {
  local path="${CHROMIUM_PATH:-/usr/bin/chromium}"
  [ -x "$path" ] && return 0
  if [ -z "${CHROMIUM_PATH:-}" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (apt-get) for the dashboard's e2e test…"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
    [ -x "$path" ] && return 0
  fi
  echo "error: no Chromium at $path: the dashboard's e2e test needs it." >&2
  echo "  install Debian's package (sudo apt-get install -y chromium) or set CHROMIUM_PATH" >&2
  return 1
}

# For the scripts that run against the real broker and Postgres (npm test, test:faults, bench):
# starts the Kafka broker when none runs (and stops it again when the script exits), exports
# KAFKA_BROKERS and TEST_DATABASE_URL, and checks that Postgres answers at the URL in the variable
# named by $1 (default TEST_DATABASE_URL; another name defaults to TEST_DATABASE_URL's value).
use_kafka_and_postgres() {
  local var="${1:-TEST_DATABASE_URL}"
  started_kafka=false
  if ! bash "$root/infra/kafka/kafka.sh" status >/dev/null 2>&1; then
    bash "$root/infra/kafka/kafka.sh" start
    started_kafka=true
  fi
  trap 'if $started_kafka; then bash "$root/infra/kafka/kafka.sh" stop || true; fi' EXIT
  export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
  export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  local url="${!var:-$TEST_DATABASE_URL}"
  export "$var=$url"
  if ! DATABASE_URL="$url" postgres_reachable; then
    echo "error: Postgres is not reachable at $url (set $var)" >&2
    exit 1
  fi
}
