#!/usr/bin/env bash
# Makes a Docker-compatible container engine available for the chaos tests and the images.
#
# Where a Docker engine answers (`docker info`), it does nothing. Otherwise it sets up podman as
# measured on these machines (shared/notes/containers-here.md):
#   - installs podman, runc, fuse-overlayfs and busybox-static (apt);
#   - runs containers with runc (crun fails here: "cgroups in hybrid mode not supported") and
#     default ulimits at the machine's own hard limits (podman's defaults exceed them and the
#     container fails with "setrlimit ... operation not permitted");
#   - serves the Docker Engine API on unix:///run/podman/podman.sock;
#   - when the upstream base images cannot be pulled (no registry), builds local stand-ins for
#     them from this machine's own node and nats-server binaries (FROM scratch + the shared
#     libraries ldd lists + busybox for a shell), tagged localhost/cadre-base/*.
# It then writes the settings the tests and the image build read to infra/.runtime.env:
#   DOCKER_HOST, TESTCONTAINERS_RYUK_DISABLED, CADRE_NODE_IMAGE, CADRE_NATS_IMAGE, CADRE_CONTAINER_CLI.
# Idempotent: a second run checks each step and takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="$ROOT/infra/.runtime.env"
SOCKET=/run/podman/podman.sock
NODE_UPSTREAM="${CADRE_NODE_UPSTREAM:-docker.io/library/node:20-bookworm-slim}"
NATS_UPSTREAM="${CADRE_NATS_UPSTREAM:-docker.io/library/nats:2.9.10-alpine}"
# Bump when build_standin changes, so machines that built an older stand-in build the new one.
STANDIN_REV=2
NODE_STANDIN="localhost/cadre-base/node:20-standin$STANDIN_REV"
NATS_STANDIN="localhost/cadre-base/nats:2.9.10-standin$STANDIN_REV"

log() { printf '[container-runtime] %s\n' "$*"; }
die() {
  printf '[container-runtime] error: %s\n' "$*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

write_env() {
  # $1: DOCKER_HOST ("" to leave the client's default), $2: cli, $3: node image, $4: nats image
  {
    echo "# written by infra/container-runtime.sh; read by the chaos tests and infra/build-images.sh"
    [ -n "$1" ] && echo "DOCKER_HOST=$1"
    echo "TESTCONTAINERS_RYUK_DISABLED=true"
    echo "CADRE_CONTAINER_CLI=$2"
    echo "CADRE_NODE_IMAGE=$3"
    echo "CADRE_NATS_IMAGE=$4"
  } >"$ENV_FILE"
  log "wrote $ENV_FILE"
}

# --- a Docker engine already here: use it as it is ---
if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
  log "a Docker engine answers; nothing to set up"
  write_env "" docker "$NODE_UPSTREAM" "$NATS_UPSTREAM"
  exit 0
fi

# --- podman ---
missing=()
for p in podman runc fuse-overlayfs busybox-static curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  log "podman $(podman --version | awk '{print $3}'), runc, fuse-overlayfs, busybox-static: ok"
fi

# --- limits: probed, not assumed ---
# Start from the machine's hard limits ("unlimited" capped) and step down until a container
# starts: on some machines the hard limit reported here is still above what runc may set (seen:
# nproc hard limit 96365, yet only values up to about 30000 were accepted).
hard() {
  local v
  v="$(ulimit -H "$1")"
  if [ "$v" = "unlimited" ] || [ "$v" -gt 1048576 ]; then v=1048576; fi
  printf '%s' "$v"
}
write_conf() {
  local conf="[containers]
default_ulimits = [\"nofile=$1:$1\", \"nproc=$2:$2\"]

[engine]
runtime = \"runc\"
"
  if [ "$(cat /etc/containers/containers.conf 2>/dev/null || true)" != "$conf" ]; then
    as_root mkdir -p /etc/containers
    printf '%s' "$conf" | as_root tee /etc/containers/containers.conf >/dev/null
    log "wrote /etc/containers/containers.conf (runc; nofile $1, nproc $2)"
    conf_changed=1
  fi
}
conf_changed=0
if [ -f /etc/containers/containers.conf ] && grep -q 'runtime = "runc"' /etc/containers/containers.conf; then
  : # keep the probed limits of an earlier run unless a container fails to start below
else
  write_conf "$(hard -n)" "$(hard -u)"
fi
starts() { podman run --rm --ulimit "nofile=$1:$1" --ulimit "nproc=$2:$2" "$nats_image" --version >/dev/null 2>&1; }
probe_limits() {
  local nofile nproc
  nofile="$(hard -n)"
  nproc="$(hard -u)"
  # One limit at a time, so the one that is fine keeps its full value.
  while ! starts "$nofile" "$nproc" && [ "$nproc" -gt 1024 ]; do nproc=$((nproc * 3 / 4)); done
  while ! starts "$nofile" "$nproc" && [ "$nofile" -gt 1024 ]; do nofile=$((nofile * 3 / 4)); done
  starts "$nofile" "$nproc" || die "no container starts even with nofile/nproc near 1024; see 'podman run --rm $nats_image --version'"
  write_conf "$nofile" "$nproc"
}

# --- base images: upstream when a registry answers, else local stand-ins ---
have_image() { podman image exists "$1" 2>/dev/null; }

# Copies a binary and every shared library ldd lists for it into $2 (a build context).
copy_with_libs() {
  local bin="$1" ctx="$2" dest="$3"
  mkdir -p "$ctx/rootfs$(dirname "$dest")"
  cp -L "$bin" "$ctx/rootfs$dest"
  ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
}

build_standin() {
  # $1 tag, $2 binary, $3 path in image, $4 extra Containerfile lines
  local tag="$1" bin="$2" dest="$3" extra="$4" ctx
  ctx="$(mktemp -d)"
  copy_with_libs "$bin" "$ctx" "$dest"
  mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  for app in sh wget cat ls ps kill sleep mkdir chown rm find echo env grep; do ln -s busybox "$ctx/rootfs/bin/$app"; done
  # Users and groups a non-root USER line can name; /tmp writable by everyone.
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnats:x:1001:1001:nats:/tmp:/bin/sh\n' >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnats:x:1001:\n' >"$ctx/rootfs/etc/group"
  mkdir -p "$ctx/rootfs/home/node"
  chmod 1777 "$ctx/rootfs/tmp"
  chown 1000:1000 "$ctx/rootfs/home/node"
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n%s\n' "$extra" >"$ctx/Containerfile"
  podman build -q --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "built stand-in $tag from $bin"
}

pick_image() {
  # $1 upstream, $2 stand-in tag, $3 binary, $4 path in image, $5 extra lines; prints the image to use
  if have_image "$1"; then
    echo "$1"
  elif timeout 20 podman pull -q "$1" >/dev/null 2>&1; then
    echo "$1"
  else
    have_image "$2" || build_standin "$2" "$3" "$4" "$5" >&2
    echo "$2"
  fi
}

nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
[ -x "$nats_bin" ] || die "nats-server not found; run scripts/install.sh first"
node_image="$(pick_image "$NODE_UPSTREAM" "$NODE_STANDIN" "$(command -v node)" /usr/local/bin/node 'CMD ["node"]')"
nats_image="$(pick_image "$NATS_UPSTREAM" "$NATS_STANDIN" "$nats_bin" /usr/local/bin/nats-server 'ENTRYPOINT ["nats-server"]')"
# A container must start with the configured limits; if not, probe them again.
if ! podman run --rm "$nats_image" --version >/dev/null 2>&1; then
  probe_limits
fi

# --- the Docker-compatible API socket ---
ping() { curl -sf --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
if ping && [ "$conf_changed" -eq 1 ]; then
  log "restarting the podman API service: its configuration changed"
  as_root pkill -f "podman system service" || true
  for _ in $(seq 1 50); do ping || break; sleep 0.1; done
fi
if ping; then
  log "podman API on $SOCKET: ok"
else
  as_root mkdir -p "$(dirname "$SOCKET")"
  log "starting podman system service on unix://$SOCKET"
  # setsid + nohup: the service outlives this script and the shell that ran it. From /: conmon
  # inherits the service's working directory and fails every container ("Failed to get working
  # directory", seen as HTTP 500 "write child: broken pipe") once that directory is deleted,
  # e.g. a CI clone removed after its run.
  as_root env --chdir=/ setsid nohup podman system service --time=0 "unix://$SOCKET" >/tmp/podman-service.log 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    ping && break
    sleep 0.1
  done
  ping || die "podman API did not answer on $SOCKET (see /tmp/podman-service.log)"
  log "podman API on $SOCKET: ok"
fi


log "node base image: $node_image; nats base image: $nats_image"
write_env "unix://$SOCKET" podman "$node_image" "$nats_image"
