/**
 * Identities and credentials. `initSecurity(dir)` generates one nkey user per identity (the
 * supervisor, the monitor, the operator, a viewer, and each agent-host by its id) and the
 * nats-server configuration that admits exactly them, each with its role's permissions
 * (protocol permissions.ts). Seeds are written with mode 0600 and never logged.
 *
 * Layout of `dir`:
 *   nats.conf                  the server's configuration (JetStream, loopback, the users)
 *   identities.json            names, roles and public keys (no secrets)
 *   identities/<name>.nk       each identity's nkey seed
 *   ca.pem, server.pem/.key    with `tls`: the CA and the server's certificate (127.0.0.1, localhost)
 *   identities/<name>.pem/.key with `tls`: each identity's client certificate (mutual TLS)
 *
 * Clients authenticate with `natsCredentials` (a seed file or a `.creds` file), or with
 * `user:password@` in the URL.
 */

import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { authorizationConfig, type Identity, InvalidConfigError, type Role, type TaskResult } from "@cadre/protocol";
import { type Authenticator, credsAuthenticator, nkeyAuthenticator, nkeys } from "@nats-io/nats-core";

/** What {@link initSecurity} wrote. */
export interface SecurityFiles {
  dir: string;
  /** The nats-server configuration to start the server with (`nats-server -c`). */
  serverConfig: string;
  identities: Identity[];
  /** The seed file of an identity, by name. */
  credentials(name: string): string;
  /** With TLS: the CA and an identity's client certificate and key. */
  tls?: (name: string) => NatsTls;
}

/** Files for a TLS connection (mutual TLS when cert and key are given). */
export interface NatsTls {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

/** Options of {@link initSecurity}. */
export interface InitSecurityOptions {
  /** Agent-host ids to make identities for. @default ["host-1", "host-2"] */
  hosts?: string[];
  /** JetStream directory written into the server configuration. */
  jetstreamDir?: string;
  /** Keep identities that exist (add missing ones); false replaces them all (rotation). @default true */
  keep?: boolean;
  /** Also a CA, a server certificate and a client certificate per identity; the server requires them. */
  tls?: boolean;
  /** Names the server certificate is valid for besides 127.0.0.1 and localhost (compose service names). */
  serverNames?: string[];
}

const seedFile = (dir: string, name: string) => join(dir, "identities", `${name}.nk`);

/**
 * Generates (or completes) the identities and the server configuration in `dir`. With `keep`
 * (the default) existing seeds are reused, so running it again only adds what is missing; with
 * `keep: false` every identity gets a new key (restart the server and the services after).
 */
export function initSecurity(dir: string, opts: InitSecurityOptions = {}): SecurityFiles {
  mkdirSync(join(dir, "identities"), { recursive: true, mode: 0o700 });
  const wanted: { name: string; role: Role; hostId?: string }[] = [
    { name: "supervisor", role: "supervisor" },
    { name: "monitor", role: "monitor" },
    { name: "operator", role: "operator" },
    { name: "viewer", role: "viewer" },
    ...(opts.hosts ?? ["host-1", "host-2"]).map((h) => ({ name: h, role: "agent-host" as const, hostId: h })),
  ];
  const identities: Identity[] = wanted.map((w) => {
    const file = seedFile(dir, w.name);
    let seed: string;
    if ((opts.keep ?? true) && existsSync(file)) {
      seed = readFileSync(file, "utf8").trim();
    } else {
      seed = new TextDecoder().decode(nkeys.createUser().getSeed());
      writeFileSync(file, `${seed}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    const publicKey = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
    return { ...w, publicKey };
  });
  writeFileSync(join(dir, "identities.json"), `${JSON.stringify(identities, null, 2)}\n`);
  const serverConfig = join(dir, "nats.conf");
  const js = opts.jetstreamDir ? `jetstream { store_dir: ${JSON.stringify(opts.jetstreamDir)} }` : "jetstream {}";
  let tlsBlock = "";
  if (opts.tls) {
    makeCertificates(
      dir,
      wanted.map((w) => w.name),
      opts.serverNames ?? [],
      opts.keep ?? true,
    );
    const f = (n: string) => JSON.stringify(join(dir, n));
    // verify: a client must present a certificate signed by the CA (mutual TLS), besides its nkey.
    tlsBlock = `tls {\n  cert_file: ${f("server.pem")}\n  key_file: ${f("server.key")}\n  ca_file: ${f("ca.pem")}\n  verify: true\n  timeout: 5\n}\n`;
  }
  writeFileSync(serverConfig, `${js}\n${tlsBlock}${authorizationConfig(identities)}`, { mode: 0o600 });
  return {
    dir,
    serverConfig,
    identities,
    credentials: (name) => seedFile(dir, name),
    ...(opts.tls
      ? {
          tls: (name: string) => ({
            caFile: join(dir, "ca.pem"),
            certFile: join(dir, "identities", `${name}.pem`),
            keyFile: join(dir, "identities", `${name}.key`),
          }),
        }
      : {}),
  };
}

/** Runs openssl (Debian's `openssl` package); its output is not needed unless it fails. */
function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    throw new InvalidConfigError("security init --tls", [
      {
        path: "tls",
        message:
          e.code === "ENOENT"
            ? "openssl is not installed (apt-get install openssl)"
            : `openssl ${args[0]} failed: ${e.stderr?.toString().trim().slice(0, 300) ?? "unknown error"}`,
      },
    ]);
  }
}

/** A CA, the server's certificate and one client certificate per identity (EC P-256). */
function makeCertificates(dir: string, names: string[], serverNames: string[], keep: boolean): void {
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!keep || !existsSync(join(dir, "ca.pem"))) {
    openssl(
      ["req", "-x509", ...key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Cadre CA"],
      dir,
    );
    chmodSync(join(dir, "ca.key"), 0o600);
  }
  const sign = (name: string, out: string, ext: string) => {
    if (keep && existsSync(join(dir, `${out}.pem`))) return;
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, ext);
    openssl(["req", ...key, "-keyout", `${out}.key`, "-out", `${out}.csr`, "-subj", `/CN=${name}`], dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${out}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${out}.pem`,
        "-days",
        "825",
        "-extfile",
        extFile,
      ],
      dir,
    );
    chmodSync(join(dir, `${out}.key`), 0o600);
    rmSync(join(dir, `${out}.csr`));
    rmSync(extFile);
  };
  const sans = ["IP:127.0.0.1", "IP:::1", "DNS:localhost", ...serverNames.map((n) => `DNS:${n}`)].join(",");
  sign("nats", "server", `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  for (const n of names) sign(n, join("identities", n), "extendedKeyUsage=clientAuth\n");
}

/** How a client authenticates, from the configuration and the URL. */
export interface NatsAuth {
  /** An nkey seed file (`SU...`) or a `.creds` file (user JWT and seed). */
  credentials?: string | undefined;
  /** TLS files: the CA to trust, and a client certificate for mutual TLS. */
  tls?: NatsTls | undefined;
}

/**
 * The authenticator for a credentials file, by its content: a `.creds` file (JWT block) or an
 * nkey user seed. Anything else is INVALID_CONFIG naming the file (never its content).
 */
export function authenticatorFor(file: string): Authenticator {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidConfigError("natsCredentials", [
      { path: "natsCredentials", message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})` },
    ]);
  }
  if (text.includes("BEGIN NATS USER JWT")) return credsAuthenticator(new TextEncoder().encode(text));
  const seed = text.trim();
  if (/^SU[A-Z2-7]{56}$/.test(seed)) return nkeyAuthenticator(new TextEncoder().encode(seed));
  throw new InvalidConfigError("natsCredentials", [
    { path: "natsCredentials", message: `${file} is neither an nkey user seed (SU...) nor a .creds file` },
  ]);
}

/**
 * Splits `user:password@` out of server URLs (nats.js ignores credentials written in a URL):
 * the servers without them, and the user and password of the first URL that has some.
 */
export function credentialsFromUrls(servers: string[]): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const clean = servers.map((s) => {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(s);
    if (!m) return s;
    const [u, p] = (m[2] ?? "").split(":");
    if (user === undefined && u) {
      user = decodeURIComponent(u);
      pass = p === undefined ? undefined : decodeURIComponent(p);
    }
    return `${m[1]}${m[3]}`;
  });
  return { servers: clean, ...(user !== undefined ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}

/** How the configuration says to authenticate (identity and TLS). */
export function natsAuthOf(config: { natsCredentials?: string | undefined; natsTls?: NatsTls | undefined }): NatsAuth {
  return { credentials: config.natsCredentials, tls: config.natsTls };
}

// --- signed results --------------------------------------------------------------------------

/** JSON with object keys sorted, so a value signs the same whatever order its keys arrive in. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(",")}}`;
}

/** The bytes a host signs for a result: every field but `offline` and `sig`, canonically. */
export function resultDigest(r: TaskResult): Uint8Array {
  const { offline: _o, sig: _s, ...fields } = r;
  return createHash("sha256")
    .update(`cadre-result:v1\n${canonicalJson(fields)}`)
    .digest();
}

/** Signs results with an identity's nkey. */
export interface ResultSigner {
  readonly publicKey: string;
  sign(r: TaskResult): string;
}

/** The seed in a seed file or a `.creds` file. */
function seedOf(file: string): string | undefined {
  const text = readFileSync(file, "utf8");
  const m = /-----BEGIN USER NKEY SEED-----\s*(SU[A-Z2-7]{56})/.exec(text);
  const seed = m?.[1] ?? text.trim();
  return /^SU[A-Z2-7]{56}$/.test(seed) ? seed : undefined;
}

/** RFC 4648 base32 (no padding), as nkeys are written. */
function base32(text: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new TypeError("not base32");
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

// DER wrappers of a raw Ed25519 key, so Node's own (native) Ed25519 signs and verifies: the
// nkeys library's pure-JS one took milliseconds per result under load.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** An nkey user seed (`SU...`: 2 prefix bytes, the 32-byte Ed25519 seed, a checksum) as a key. */
function privateKeyOf(seed: string): KeyObject {
  const raw = base32(seed).subarray(2, 34);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
}

const publicKeys = new Map<string, KeyObject>();
/** An nkey user public key (`U...`: 1 prefix byte, the 32-byte key, a checksum) as a key. */
function publicKeyOf(publicKey: string): KeyObject {
  let k = publicKeys.get(publicKey);
  if (!k) {
    const raw = base32(publicKey).subarray(1, 33);
    k = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
    if (publicKeys.size > 10_000) publicKeys.clear();
    publicKeys.set(publicKey, k);
  }
  return k;
}

/** A signer from the identity in a credentials file; undefined when there is none (anonymous). */
export function resultSigner(credentials: string | undefined): ResultSigner | undefined {
  if (!credentials) return undefined;
  const seed = seedOf(credentials);
  if (!seed) return undefined;
  const key = privateKeyOf(seed);
  return {
    publicKey: nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey(),
    sign: (r) => sign(null, resultDigest(r), key).toString("base64url"),
  };
}

/** Whether `r.sig` is the signature of the key `publicKey` over the result. */
export function verifyResult(r: TaskResult, publicKey: string): boolean {
  if (!r.sig) return false;
  try {
    return verify(null, resultDigest(r), publicKeyOf(publicKey), Buffer.from(r.sig, "base64url"));
  } catch {
    return false;
  }
}

/**
 * The JetStream message id of a result. Signed, it ends with part of the signature, which only
 * the signing host can produce: a forger publishing first under a predictable id can no longer
 * make JetStream drop the genuine result as its duplicate.
 */
export function signedResultMessageId(base: string, r: TaskResult): string {
  return r.sig ? `${base}:${r.sig.slice(0, 22)}` : base;
}
