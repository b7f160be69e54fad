#!/usr/bin/env bash
# Generates the identities of the compose deployment (infra/compose.yaml) into infra/.security:
#   identities/<name>.nk    an nkey seed per identity (supervisor, monitor, operator, viewer,
#                           host-1..host-3), mode 0600, never logged; compose mounts each service's
#                           own seed read-only at /etc/cadre/identity.nk and passes --nats-creds
#   identities.json         names, roles and public keys
#   authorization.conf      only the `authorization` block (public keys and permissions, no secret),
#                           which every NATS node includes from /etc/nats/security/authorization.conf
#   nats.conf               what `cadre security init` writes for a single local server (unused here)
#   ca.pem, server.pem/.key with --tls: the CA and the NATS nodes' certificate (nats-1..3), and
#   identities/<name>.pem/.key  each identity's client certificate; authorization.conf then also
#                           has the server's `tls` block (see infra/compose.tls.yaml)
# Needs `pnpm build` first. Run again, it keeps the keys and adds missing ones; with --rotate it
# replaces them all (then `docker compose -f infra/compose.yaml up -d --force-recreate`). Extra
# arguments go to `cadre security init` (e.g. --rotate; a longer --hosts list needs compose services too).
#
#   bash infra/security/init.sh
#   export CADRE_NATS_CREDS=$PWD/infra/.security/identities/operator.nk   # the CLI as the operator
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/infra/.security"
cd "$ROOT"
[ -f packages/cli/dist/main.js ] || { echo "[security] error: run 'pnpm build' first" >&2; exit 1; }

node packages/cli/dist/main.js security init "$DIR" \
  --hosts host-1,host-2,host-3 --server-names nats-1,nats-2,nats-3 "$@"

# The NATS nodes take their cluster and JetStream settings from infra/nats/cluster.conf and only
# the users from here: the same block `cadre security init` puts in nats.conf.
tls=0
for arg in "$@"; do [ "$arg" = "--tls" ] && tls=1; done
node --input-type=module -e '
  import { readFileSync, writeFileSync } from "node:fs";
  import { pathToFileURL } from "node:url";
  const [root, dir, tls] = process.argv.slice(1);
  const { authorizationConfig } = await import(pathToFileURL(root + "/packages/protocol/dist/index.js").href);
  const { natsTlsBlock } = await import(pathToFileURL(root + "/packages/runtime/dist/index.js").href);
  const identities = JSON.parse(readFileSync(dir + "/identities.json", "utf8"));
  // With TLS: the files as infra/compose.tls.yaml mounts them in each node.
  const block = tls === "1" ? natsTlsBlock("/etc/nats/security") : "";
  writeFileSync(dir + "/authorization.conf", authorizationConfig(identities) + block, { mode: 0o644 });
' "$ROOT" "$DIR" "$tls"
# Readable by the nats user of the image (uid 1001): it holds public keys and permissions only.
chmod 0644 "$DIR/authorization.conf"
# The server's key, read by that user through the bind mount: on a machine of your own only.
if [ "$tls" = 1 ]; then chmod 0644 "$DIR/server.key"; fi
chmod 0755 "$DIR"
echo "[security] wrote $DIR/authorization.conf (included by every NATS node)"

# The services run as the image's node user (uid 1000) and read their seed (0600, owned by you)
# through a bind mount: that works where your uid is 1000 (or under rootless podman's keep-id).
if [ "$(id -u)" != 1000 ]; then
  echo "[security] note: your uid is $(id -u) but the services read their seed as uid 1000: on a machine" \
    "of your own, 'chmod 0644 $DIR/identities/*.nk' (anyone on it can then read them)" >&2
fi
