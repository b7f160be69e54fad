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
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { authorizationConfig, type Identity, InvalidConfigError, type Role } from "@cadre/protocol";
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
    tlsBlock = natsTlsBlock(dir);
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
/**
 * nats-server's `tls` block for the files `initSecurity` made, as they are found in `dir` (on
 * this machine, or where a container mounts them). `verify`: a client must present a
 * certificate signed by the CA (mutual TLS), besides its nkey.
 */
export function natsTlsBlock(dir: string): string {
  const f = (n: string) => JSON.stringify(`${dir.replace(/\/$/, "")}/${n}`);
  return `tls {\n  cert_file: ${f("server.pem")}\n  key_file: ${f("server.key")}\n  ca_file: ${f("ca.pem")}\n  verify: true\n  timeout: 5\n}\n`;
}

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
 * nkey user seed, and the identity's inbox prefix (`_INBOX.<public key>`: each identity may
 * subscribe to its own replies only, permissions.ts). Anything else is INVALID_CONFIG naming
 * the file (never its content).
 */
export function authenticatorFor(file: string): { authenticator: Authenticator; inboxPrefix: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidConfigError("natsCredentials", [
      { path: "natsCredentials", message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})` },
    ]);
  }
  const creds = text.includes("BEGIN NATS USER JWT");
  const seed = creds ? /-----BEGIN USER NKEY SEED-----\s*(SU[A-Z2-7]{56})/.exec(text)?.[1] : text.trim();
  if (seed && /^SU[A-Z2-7]{56}$/.test(seed)) {
    const bytes = new TextEncoder().encode(seed);
    return {
      authenticator: creds ? credsAuthenticator(new TextEncoder().encode(text)) : nkeyAuthenticator(bytes),
      inboxPrefix: inboxPrefixOf(nkeys.fromSeed(bytes).getPublicKey()),
    };
  }
  throw new InvalidConfigError("natsCredentials", [
    { path: "natsCredentials", message: `${file} is neither an nkey user seed (SU...) nor a .creds file` },
  ]);
}

/** Where an identity's replies arrive: under its public key, so no other identity may read them. */
export const inboxPrefixOf = (publicKey: string): string => `_INBOX.${publicKey}`;

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
