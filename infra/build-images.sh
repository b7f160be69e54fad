#!/usr/bin/env bash
# Builds Cadre's images from the current working tree: cadre/supervisor, cadre/agent-host,
# cadre/monitor (infra/Containerfile) and cadre/nats (infra/nats/Containerfile), all tagged :dev.
# Uses the engine and base images infra/container-runtime.sh chose (infra/.runtime.env), or
# docker with the upstream bases when that file is absent. Needs `pnpm build` first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -f infra/.runtime.env ] && set -a && . infra/.runtime.env && set +a
CLI="${CADRE_CONTAINER_CLI:-docker}"
TAG="${CADRE_IMAGE_TAG:-dev}"
args=()
[ -n "${CADRE_NODE_IMAGE:-}" ] && args+=(--build-arg "NODE_IMAGE=$CADRE_NODE_IMAGE")
natsargs=()
[ -n "${CADRE_NATS_IMAGE:-}" ] && natsargs+=(--build-arg "NATS_IMAGE=$CADRE_NATS_IMAGE")
fmt=()
[ "$CLI" = podman ] && fmt=(--format docker) # keeps HEALTHCHECK, which the OCI format drops

log() { printf '[build-images] %s\n' "$*"; }

for f in services/supervisor/dist/main.js services/agent-host/dist/main.js services/monitor/dist/main.js; do
  [ -f "$f" ] || { echo "[build-images] error: $f is missing; run 'pnpm build' first" >&2; exit 1; }
done

rm -rf infra/.build
mkdir -p infra/.build
for svc in supervisor agent-host monitor; do
  log "pnpm deploy @cadre/$svc"
  pnpm --silent --filter "@cadre/$svc" deploy --prod --legacy "infra/.build/$svc" >/dev/null
done
for svc in supervisor agent-host monitor; do
  log "$CLI build cadre/$svc:$TAG"
  "$CLI" build -q "${fmt[@]}" "${args[@]}" --build-arg "SERVICE=$svc" -t "cadre/$svc:$TAG" -f infra/Containerfile infra/.build >/dev/null
done
log "$CLI build cadre/nats:$TAG"
"$CLI" build -q "${fmt[@]}" "${natsargs[@]}" -t "cadre/nats:$TAG" -f infra/nats/Containerfile infra/nats >/dev/null
log "done: cadre/{supervisor,agent-host,monitor,nats}:$TAG"
"$CLI" image prune -f >/dev/null 2>&1 || true # the stage-1 images left untagged
