import { InvalidConfigError, parseConfig } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  compileRedactPatterns,
  configureRedaction,
  MAX_REDACT_CHARS,
  REDACTED,
  redact,
  redactDeep,
  redactSecret,
} from "./redact.js";

// Real-shaped secrets (generated for these tests, used nowhere).
const SEED = "SUAJAATTHHNT53MIM46ZTP5DYG5VIUEGFC4FWIRFLZOAJWH6WCVIAUGNTA";
const ACCOUNT_SEED = "SAAEHXDGZKKW6LIQMHOYPT7M7T6PMLPXL2SMF7FZDPEY5KXSFWZJUNX6QE";
const PUBLIC_KEY = "UCJMB4JVZBNXUZYVYZA4AWQUCEMPTOJVSRDD4YZVPNNUKFMJ3OD6URCC";
const JWT =
  "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiJBQkNERUYiLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
const PEM_BODY =
  "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK";
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----`;
const CREDS = `-----BEGIN NATS USER JWT-----
${JWT}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.

-----BEGIN USER NKEY SEED-----
${SEED}
------END USER NKEY SEED------
`;

afterEach(() => configureRedaction([]));

/** Each built-in pattern: what it must redact, and a near miss it must leave alone. */
const cases: { name: string; secret: string; input: string; output: string; nearMiss: string }[] = [
  {
    name: "Authorization: Bearer header",
    secret: "abc.def.ghi",
    input: "curl: 401 with Authorization: Bearer abc.def.ghi sent",
    output: `curl: 401 with Authorization: Bearer ${REDACTED} sent`,
    nearMiss: "authorization failed for user bob",
  },
  {
    name: "Authorization: Basic header",
    secret: "dXNlcjpodW50ZXIy",
    input: "header Authorization: Basic dXNlcjpodW50ZXIy",
    output: `header Authorization: Basic ${REDACTED}`,
    nearMiss: "Authorization is required",
  },
  {
    name: "Bearer <token> on its own",
    secret: "tok_12345678",
    input: "retrying with bearer tok_12345678 now",
    output: `retrying with bearer ${REDACTED} now`,
    nearMiss: "Bearer tokens are never logged; the bearer of bad news",
  },
  {
    name: "password= assignment",
    secret: "hunter2",
    input: "mysql --password=hunter2 -h db",
    output: `mysql --password=${REDACTED} -h db`,
    nearMiss: "password reset by email; passwords=3",
  },
  {
    name: "passwd= / pwd= / prefixed env assignment",
    secret: "s3cr3t",
    input: "PGPASSWORD=s3cr3t psql; passwd=s3cr3t; MYSQL_PWD=s3cr3t",
    output: `PGPASSWORD=${REDACTED} psql; passwd=${REDACTED}; MYSQL_PWD=${REDACTED}`,
    nearMiss: "cwd=/tmp/work passwd_file",
  },
  {
    name: "secret= / token= / api_key= / apikey= in a query string",
    secret: "k9",
    input: "GET /x?secret=k9&token=k9&api_key=k9&apikey=k9&page=2",
    output: `GET /x?secret=${REDACTED}&token=${REDACTED}&api_key=${REDACTED}&apikey=${REDACTED}&page=2`,
    nearMiss: "max_tokens=500 secretary=bob",
  },
  {
    name: "key: value",
    secret: "hunter2",
    input: "config loaded, db password: hunter2\nnext line",
    output: `config loaded, db password: ${REDACTED}\nnext line`,
    nearMiss: "password expired, change it",
  },
  {
    name: 'JSON "key": "value"',
    secret: "hunter 2",
    input: '{"user":"bob","password": "hunter 2","apiKey":"hunter 2x","token":1234}',
    output: `{"user":"bob","password": "${REDACTED}","apiKey":"${REDACTED}","token":${REDACTED}}`,
    nearMiss: '{"passwordPolicy":"strong","tokens":12}',
  },
  {
    name: "quoted shell value",
    secret: "hunter 2",
    input: "export DB_PASSWORD='hunter 2' && run",
    output: `export DB_PASSWORD='${REDACTED}' && run`,
    nearMiss: "echo 'the password is in the vault'",
  },
  {
    name: "--token value option",
    secret: "t0k3n",
    input: "cli login --token t0k3n --verbose",
    output: `cli login --token ${REDACTED} --verbose`,
    nearMiss: "cli login --token-file /etc/t --password-stdin",
  },
  {
    name: "URL user:password@",
    secret: "hunter2",
    input: "cannot reach postgres://app:hunter2@db:5432/app",
    output: `cannot reach postgres://app:${REDACTED}@db:5432/app`,
    nearMiss: "see https://example.com:8443/a@b and ssh://git@github.com",
  },
  {
    name: "NATS token URL",
    secret: "s3cr3ttoken",
    input: "connect nats://s3cr3ttoken@127.0.0.1:4222 failed",
    output: `connect nats://${REDACTED}@127.0.0.1:4222 failed`,
    nearMiss: "connect nats://127.0.0.1:4222 failed",
  },
  {
    name: "PEM private key block",
    secret: "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    input: `key:\n${PEM}\ndone`,
    output: `key:\n-----BEGIN RSA PRIVATE KEY-----${REDACTED}-----END RSA PRIVATE KEY-----\ndone`,
    nearMiss: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
  },
  {
    name: "OpenSSH private key cut before its END",
    secret: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    input: "oops -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    output: `oops -----BEGIN OPENSSH PRIVATE KEY-----${REDACTED}`,
    nearMiss: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
  },
  {
    name: "private key whose BEGIN was cut off (a stderr tail)",
    secret: "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    input: `${PEM_BODY}\n-----END RSA PRIVATE KEY-----\nexit 1`,
    output: `${REDACTED}\n-----END RSA PRIVATE KEY-----\nexit 1`,
    nearMiss: "the text -----END RSA PRIVATE KEY----- alone, after prose\nok",
  },
  {
    name: "NATS creds file",
    secret: SEED,
    input: CREDS,
    output: CREDS.replace(`\n${JWT}\n-`, REDACTED).replace(`\n${SEED}\n-`, REDACTED),
    nearMiss: "-----BEGIN NATS OPERATOR NOTES-----\nhello\n-----END NATS OPERATOR NOTES-----",
  },
  {
    name: "NATS nkey seed",
    secret: ACCOUNT_SEED,
    input: `seed ${ACCOUNT_SEED} rejected`,
    output: `seed ${REDACTED} rejected`,
    nearMiss: `public key ${PUBLIC_KEY}; short ${SEED.slice(0, 57)}`,
  },
  {
    name: "JWT",
    secret: JWT,
    input: `nats: user JWT ${JWT} expired`,
    output: `nats: user JWT ${REDACTED} expired`,
    nearMiss: "eyJhbGciOi is base64 of a JSON start, eyJ.eyJ.x too short",
  },
  {
    name: "AWS access key id",
    secret: "AKIAIOSFODNN7EXAMPLE",
    input: "aws: AKIAIOSFODNN7EXAMPLE is not authorised",
    output: `aws: ${REDACTED} is not authorised`,
    nearMiss: "AKIAIOSFODNN7EXAMPL (19 chars), akiaiosfodnn7example",
  },
  {
    name: "sk- API key",
    secret: "sk-proj-Abc123Def456Ghi789Jkl0",
    input: "openai: key sk-proj-Abc123Def456Ghi789Jkl0 invalid",
    output: `openai: key ${REDACTED} invalid`,
    nearMiss: "pip install sk-learn; task-abcdefghijklmnopqrstuvwxyz",
  },
  {
    name: "GitHub token",
    secret: "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    input: "git: ghp_0123456789abcdefghijABCDEFGHIJ012345 revoked",
    output: `git: ${REDACTED} revoked`,
    nearMiss: "ghp_short and gh_0123456789abcdefghijABCDEFGHIJ012345",
  },
  {
    name: "Slack token",
    secret: "xoxb-1234567890-abcdef",
    input: "slack: xoxb-1234567890-abcdef failed",
    output: `slack: ${REDACTED} failed`,
    nearMiss: "xoxo-hugs and xoxb-123",
  },
];

describe("redact", () => {
  for (const c of cases) {
    it(`redacts ${c.name}, and leaves a near miss alone`, () => {
      const out = redact(c.input);
      expect(out).toBe(c.output);
      expect(out).not.toContain(c.secret);
      expect(redact(c.nearMiss)).toBe(c.nearMiss);
    });
  }

  it("is idempotent", () => {
    for (const c of cases) expect(redact(redact(c.input))).toBe(c.output);
  });

  it("scans at most 64 KiB and cuts the rest instead of passing it on unscanned", () => {
    const text = `${"x".repeat(MAX_REDACT_CHARS)} password=hunter2`;
    const out = redact(text);
    expect(out).not.toContain("hunter2");
    expect(out.startsWith("x".repeat(MAX_REDACT_CHARS))).toBe(true);
    expect(out).toContain("more characters not shown]");
  });

  it("stays fast on adversarial input (long runs of key, URL and base64 characters)", () => {
    const inputs = [
      "a.".repeat(30_000),
      "-".repeat(60_000),
      `${"QUJD\n".repeat(12_000)}x y\n-----END RSA PRIVATE KEY-----`,
      "password".repeat(8000),
      `-----BEGIN RSA PRIVATE KEY-----${"-".repeat(60_000)}`,
    ];
    const start = performance.now();
    for (const s of inputs) redact(s);
    // Linear work: a few ms each. A quadratic rule would take seconds here.
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe("configured patterns", () => {
  it("redacts a match whole, or only its first capture group", () => {
    configureRedaction(["CORP-[0-9]{6}", "employee_id=([0-9]+)"]);
    expect(redact("ticket CORP-123456 by employee_id=4242 (CORP-12)")).toBe(
      `ticket ${REDACTED} by employee_id=${REDACTED} (CORP-12)`,
    );
    configureRedaction([]);
    expect(redact("ticket CORP-123456")).toBe("ticket CORP-123456");
  });

  it("refuses an invalid or empty-matching pattern with INVALID_CONFIG naming the field", () => {
    const err = (() => {
      try {
        compileRedactPatterns(["ok", "([unclosed", "x*"]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err).toMatchObject({ code: "INVALID_CONFIG" });
    expect((err as Error).message).toContain("host.redact.patterns.1: not a valid regular expression");
    expect((err as Error).message).toContain("host.redact.patterns.2: matches the empty string");
  });

  it("is a configuration setting, checked when the configuration is parsed", async () => {
    expect(parseConfig({ host: { redact: { patterns: ["CORP-[0-9]+"] } } }).host.redact).toEqual({
      patterns: ["CORP-[0-9]+"],
    });
    expect(parseConfig({}).host.redact).toBeUndefined();
    const err = await rejection(
      Promise.resolve().then(() => parseConfig({ host: { redact: { patterns: ["(oops"] } } })),
    );
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err.message).toMatch(/host\.redact\.patterns\.0: not a valid regular expression/);
  });
});

describe("redactDeep", () => {
  it("redacts strings at any depth and the values of secret-named keys, keeping the rest", () => {
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const when = new Date(0);
    const value = {
      command: "run --password=hunter2",
      nested: { deeper: [{ natsPassword: "hunter2", tokens: 5, accessToken: 42, hasSecret: false }] },
      list: ["Authorization: Bearer abc.def.ghi"],
      when,
      cyclic,
    };
    expect(redactDeep(value)).toEqual({
      command: `run --password=${REDACTED}`,
      nested: { deeper: [{ natsPassword: REDACTED, tokens: 5, accessToken: REDACTED, hasSecret: false }] },
      list: [`Authorization: Bearer ${REDACTED}`],
      when,
      cyclic: { name: "loop", self: "[Circular]" },
    });
    // The input is not touched.
    expect(value.command).toBe("run --password=hunter2");
  });
});

describe("redactSecret", () => {
  it("redacts a held secret value wherever it appears, whatever it looks like, but not short ones", () => {
    const key = "plainlooking.value$42";
    expect(redact(`calling with ${key} now`)).toContain(key);
    redactSecret(key);
    expect(redact(`calling with ${key} now`)).toBe(`calling with ${REDACTED} now`);
    redactSecret("short");
    expect(redact("a short word")).toBe("a short word");
  });
});
