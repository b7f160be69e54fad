#!/usr/bin/env bash
# Installs what Cadre needs to build and test on Debian 12: nats-server, openssl, prometheus,
# chromium and redis-server (apt), pnpm 10 (npm) and the workspace's dependencies (pnpm install --frozen-lockfile).
# Idempotent: a step whose result is already present is skipped, so a second run takes a few
# seconds. Needs no TTY (CI runs it with no standard input). Node.js >= 20 with npm must already be installed.
#
#   scripts/install.sh                    what the build, the demo and the tests without containers need
#   scripts/install.sh --with-containers  also a container engine for the chaos tests and the images
#                                         (infra/container-runtime.sh: podman where no Docker engine runs)
set -euo pipefail

with_containers=0
for arg in "$@"; do
  case "$arg" in
    --with-containers) with_containers=1 ;;
    -h | --help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "[install] error: unknown option $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PNPM_MAJOR=10

export DEBIAN_FRONTEND=noninteractive
# Never stop to ask: no corepack download prompt, no pnpm confirmation, no npm funding noise.
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
export npm_config_yes=true
export npm_config_fund=false
export npm_config_audit=false
export npm_config_update_notifier=false

log() { printf '[install] %s\n' "$*"; }
die() {
  printf '[install] error: %s\n' "$*" >&2
  exit 1
}

# Commands that need root run through sudo when we are not root and sudo exists.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
  else
    die "need root for: $* (run as root or install sudo)"
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- Node.js (not installed here: Debian 12's nodejs is too old) ---
command -v node >/dev/null 2>&1 || die "node not found; install Node.js >= 20 with npm"
command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js >= 20 with npm"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old; Cadre needs >= 20"
log "node $(node --version): ok"

# --- openssl (cadre security init --tls makes certificates with it) ---
if command -v openssl >/dev/null 2>&1; then
  log "$(openssl version 2>/dev/null | head -n 1): ok"
else
  apt_install openssl
  command -v openssl >/dev/null 2>&1 || die "openssl did not install"
  log "installed openssl"
fi

# --- nats-server ---
if command -v nats-server >/dev/null 2>&1; then
  log "$(nats-server --version 2>/dev/null | head -n 1 || echo nats-server) at $(command -v nats-server): ok"
elif [ -x /usr/sbin/nats-server ]; then
  # Debian installs it in /usr/sbin, which is on root's PATH but not always on a user's.
  log "nats-server is in /usr/sbin, which is not on PATH: add /usr/sbin to PATH to run the tests"
else
  apt_install nats-server
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || die "nats-server did not install"
  log "installed nats-server"
fi

# --- prometheus (test/helpers/prometheus.ts runs /usr/bin/prometheus itself, on its own port;
# the package's systemd service, which starts one on 9090 where systemd runs, is not used) ---
if command -v prometheus >/dev/null 2>&1; then
  log "$(prometheus --version 2>&1 | head -n 1) at $(command -v prometheus): ok"
else
  apt_install prometheus
  command -v prometheus >/dev/null 2>&1 || die "prometheus did not install"
  log "installed prometheus"
fi

# --- chromium (test/integration/dashboard.test.ts drives Debian's headless browser with playwright-core) ---
if command -v chromium >/dev/null 2>&1; then
  log "$(chromium --version 2>/dev/null | head -n 1) at $(command -v chromium): ok"
else
  apt_install chromium
  command -v chromium >/dev/null 2>&1 || die "chromium did not install"
  log "installed chromium"
fi

# --- redis-server (test/bench/peers.ts starts its own on a free port to measure BullMQ beside
# Cadre; the package's systemd service, which starts one on 6379 where systemd runs, is not used) ---
if command -v redis-server >/dev/null 2>&1; then
  log "$(redis-server --version 2>/dev/null | head -n 1) at $(command -v redis-server): ok"
else
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server did not install"
  log "installed redis-server"
fi

# --- pnpm 10 ---
pnpm_major() {
  local v
  v="$(pnpm --version 2>/dev/null | tail -n 1)" || return 1
  printf '%s' "${v%%.*}"
}
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm_major || true)" = "$PNPM_MAJOR" ]; then
  log "pnpm $(pnpm --version | tail -n 1): ok"
else
  if command -v pnpm >/dev/null 2>&1; then
    log "pnpm $(pnpm --version 2>/dev/null | tail -n 1 || echo '?') is not major $PNPM_MAJOR; replacing it"
  fi
  log "npm install -g pnpm@$PNPM_MAJOR"
  npm_prefix="$(npm prefix -g)"
  if [ -w "$npm_prefix/lib" ] || [ -w "$npm_prefix" ]; then
    npm install -g "pnpm@$PNPM_MAJOR"
  else
    as_root npm install -g "pnpm@$PNPM_MAJOR"
  fi
  hash -r
  command -v pnpm >/dev/null 2>&1 || die "pnpm installed but not on PATH; add $npm_prefix/bin to PATH"
  [ "$(pnpm_major || true)" = "$PNPM_MAJOR" ] || die "pnpm on PATH ($(command -v pnpm)) is not major $PNPM_MAJOR"
  log "installed pnpm $(pnpm --version | tail -n 1)"
fi

# --- workspace dependencies ---
cd "$ROOT"
log "pnpm install --frozen-lockfile (in $ROOT)"
pnpm install --frozen-lockfile --config.confirmModulesPurge=false

if [ "$with_containers" -eq 1 ]; then
  log "container engine: bash infra/container-runtime.sh"
  bash "$ROOT/infra/container-runtime.sh"
fi
log "done"
