/**
 * Redaction of secret-looking values in free text: command text, the stderr of commands and
 * hooks, hook error messages and every string a log line carries. These travel into logs and
 * into error `data` that is published as task results and events, so they are cleaned before
 * they leave the host. Each secret becomes `[REDACTED]`; the key or scheme in front of it is
 * kept (`password=[REDACTED]`, `Authorization: Bearer [REDACTED]`), so the message stays useful.
 *
 * Built in: PEM private key blocks and NATS creds blocks (also cut ones: an excerpt may hold
 * only the start or the end of a block), `user:password@` in URLs and NATS token URLs,
 * Authorization headers, `Bearer <token>`, `password=` / `passwd=` / `pwd=` / `secret=` /
 * `token=` / `api_key=` / `apikey=`-style assignments (also `key: value`, `"key": "value"` and
 * `--password value`), NATS nkey seeds, JWTs, AWS access key ids, `sk-` API keys, GitHub and
 * Slack tokens. On top of them, the patterns of the configuration (`host.redact.patterns`,
 * installed by {@link configureRedaction}).
 *
 * The work is bounded: at most {@link MAX_REDACT_CHARS} characters of a text are scanned and
 * the rest is dropped (never passed on unscanned); a deep value is walked up to a depth and a
 * number of nodes.
 */

import { InvalidConfigError } from "@cadre/protocol";

/** What a secret is replaced with. */
export const REDACTED = "[REDACTED]";

/** Characters of one text that are scanned (64 KiB); beyond them the text is cut. */
export const MAX_REDACT_CHARS = 64 * 1024;

/** The configuration field extra patterns come from, for error messages. */
export const REDACT_PATTERNS_FIELD = "host.redact.patterns";

type Replacer = (match: string, ...groups: (string | undefined)[]) => string;

type Rule = {
  /** For tests and documentation. */
  name: string;
} & ({ re: RegExp; to: string | Replacer } | { apply: (text: string) => string });

/** Labels of the armoured blocks that hold secrets: PEM/OpenSSH/PGP private keys, NATS creds. */
const BLOCK_LABEL = String.raw`[A-Z0-9 ]*?(?:PRIVATE KEY(?: BLOCK)?|NKEY SEED|USER JWT)`;
/** A key name that says its value is secret; it must end the key (`max_tokens=` is no secret). */
const SECRET_KEY = String.raw`[A-Za-z0-9_.-]*?(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)`;
/**
 * A value: double-quoted, single-quoted (either possibly cut off at the line's end), or bare up
 * to a space, `&` (query strings) or `;` (shell lists, connection strings).
 */
const VALUE = String.raw`"(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?|[^\s&;]+`;

/** Replaces a value but keeps its quotes, and the JSON punctuation a bare value swallowed. */
function redactValue(value: string, keyQuoted: boolean): string {
  if (value.startsWith(REDACTED)) return value;
  const q = value[0];
  if (q === '"' || q === "'") return `${q}${REDACTED}${value.length > 1 && value.endsWith(q) ? q : ""}`;
  // `{"token":123}`: the bare value is `123}`; the brace is the JSON's, not the secret's.
  const tail = keyQuoted ? (/[,}\]]+$/.exec(value)?.[0] ?? "") : "";
  return tail.length === value.length ? value : REDACTED + tail;
}

const END_MARKER = new RegExp(String.raw`-{5}END ${BLOCK_LABEL}-{5,}`, "g");
const BLOCK_BODY_LINE = /^[A-Za-z0-9+/=._-]*$/;

/**
 * The tail of a block whose BEGIN was cut off (a stderr tail starting inside a key): the
 * base64 lines right before an END marker that closes no BEGIN. Line by line, so it stays
 * linear however long the text.
 */
function redactCutBlocks(text: string): string {
  if (!text.includes("-----END ")) return text;
  let out = "";
  let last = 0;
  for (const m of text.matchAll(END_MARKER)) {
    const before = text.slice(last, m.index);
    // A complete block was redacted to `...-----[REDACTED]-----END`: nothing left before it.
    if (before.endsWith("\n")) {
      const lines = before.slice(0, -1).split("\n");
      let keep = lines.length;
      while (keep > 0 && BLOCK_BODY_LINE.test(lines[keep - 1]?.replace(/\r$/, "") ?? "")) keep--;
      if (keep < lines.length) {
        const kept = lines.slice(0, keep).join("\n");
        out += `${kept}${keep > 0 ? "\n" : ""}${REDACTED}\n`;
        last = m.index;
        continue;
      }
    }
    out += before;
    last = m.index;
  }
  return out + text.slice(last);
}

/** Whether the word after `Bearer` looks like a token rather than prose ("Bearer tokens are..."). */
const looksLikeToken = (t: string): boolean => t.length >= 20 || (t.length >= 8 && /[0-9\-._~+/=]/.test(t));

/** The built-in rules, applied in this order (blocks first: they span lines). */
export const BUILT_IN_RULES: readonly Rule[] = [
  {
    name: "private key / creds block",
    // A BEGIN with no END (the excerpt was cut) is redacted to the end of the text.
    re: new RegExp(String.raw`(-{5}BEGIN (${BLOCK_LABEL})-{5,})[\s\S]*?(-{5}END \2-{5,}|$)`, "g"),
    to: `$1${REDACTED}$3`,
  },
  { name: "cut private key / creds block", apply: redactCutBlocks },
  {
    name: "URL user:password@",
    re: /\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s/?#@:]+):([^\s/?#@]+)@/gi,
    to: `$1$2:${REDACTED}@`,
  },
  {
    // nats://<token>@host is NATS token authentication.
    name: "NATS token URL",
    re: /\b((?:nats|tls|wss?):\/\/)([^\s/?#@:]+)@/gi,
    to: `$1${REDACTED}@`,
  },
  {
    name: "Authorization header",
    // Already redacted (the lookahead): left alone, so redact(redact(x)) === redact(x).
    re: /\b((?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?)(?!(?:(?:bearer|basic|digest|token|bot|nkey)[ \t]+)?\[REDACTED\])(?:(bearer|basic|digest|token|bot|nkey)([ \t]+))?([^\s"',;)\]}>]+)/gi,
    to: (_m, head, scheme, gap) => `${head}${scheme ? `${scheme}${gap}` : ""}${REDACTED}`,
  },
  {
    name: "Bearer token",
    re: /\b(bearer)([ \t]+)([A-Za-z0-9\-._~+/]+=*)/gi,
    to: (m, word, gap, token) => (token && looksLikeToken(token) ? `${word}${gap}${REDACTED}` : m),
  },
  {
    name: "secret assignment",
    re: new RegExp(String.raw`(?<![A-Za-z0-9_.-])(["']?)(${SECRET_KEY})\1([ \t]*[:=][ \t]*)(${VALUE})`, "gi"),
    to: (_m, quote, key, sep, value) => `${quote}${key}${quote}${sep}${redactValue(value ?? "", quote !== "")}`,
  },
  {
    name: "secret command-line option",
    re: new RegExp(
      String.raw`(?<![\w-])(--?[A-Za-z0-9_-]*?(?:password|passwd|passphrase|token|secret|api[_-]?key))([ \t]+)(?![-\s])(${VALUE})`,
      "gi",
    ),
    to: (_m, flag, gap, value) => `${flag}${gap}${redactValue(value ?? "", false)}`,
  },
  { name: "NATS nkey seed", re: /\bS[UAONCX][A-Z2-7]{56}\b/g, to: REDACTED },
  { name: "JWT", re: /\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}/g, to: REDACTED },
  { name: "AWS access key id", re: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g, to: REDACTED },
  { name: "sk- API key", re: /\bsk-[A-Za-z0-9_-]{20,}/g, to: REDACTED },
  { name: "GitHub token", re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/g, to: REDACTED },
  { name: "Slack token", re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, to: REDACTED },
];

/** Why `pattern` cannot be an extra redaction pattern, or undefined when it can. */
export function redactPatternProblem(pattern: string): string | undefined {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  if (re.test("")) return "matches the empty string, so it would redact nothing useful and everywhere";
  return undefined;
}

/**
 * Compiles extra patterns (JavaScript regular expressions, case-sensitive). A match is
 * replaced whole, or only its first capture group when it has one (`internal_id=(\w+)` keeps
 * the key). Throws InvalidConfigError naming `<field>.<index>` for a bad pattern.
 */
export function compileRedactPatterns(patterns: readonly string[], field = REDACT_PATTERNS_FIELD): RegExp[] {
  const issues = patterns.flatMap((p, i) => {
    const problem = redactPatternProblem(p);
    return problem === undefined ? [] : [{ path: `${field}.${i}`, message: problem }];
  });
  if (issues.length > 0) throw new InvalidConfigError("configuration", issues);
  // `d`: match indices, to find the capture group's place.
  return patterns.map((p) => new RegExp(p, "gd"));
}

let configured: RegExp[] = [];
/** Secret values this process holds (API keys), redacted wherever they appear. */
let literals: RegExp[] = [];

/**
 * Redacts this value from every later {@link redact} (the logger's included), whatever it looks
 * like: an API key read from the environment or a file. Values under 8 characters are not taken
 * (they would redact ordinary words).
 */
export function redactSecret(secret: string): void {
  if (secret.length < 8) return;
  const re = new RegExp(`(${secret.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`, "gd");
  if (!literals.some((l) => l.source === re.source)) literals = [...literals, re];
}

/**
 * Sets the extra patterns of this process (the configuration's `host.redact.patterns`); they
 * apply to every later {@link redact}, the logger's included. `[]` leaves only the built-ins.
 */
export function configureRedaction(patterns: readonly string[]): void {
  configured = compileRedactPatterns(patterns);
}

function applyExtra(re: RegExp, text: string): string {
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0] === "") {
      re.lastIndex++;
      continue;
    }
    const [start, end] = m.indices?.[1] ?? [m.index, m.index + m[0].length];
    out += text.slice(last, start) + REDACTED;
    last = end;
  }
  return out + text.slice(last);
}

/**
 * `text` with every secret-looking value replaced by `[REDACTED]` (the rules above, then the
 * configured patterns). Idempotent. Beyond {@link MAX_REDACT_CHARS} the text is cut, with a
 * note saying how much.
 */
export function redact(text: string, extra: readonly RegExp[] = configured): string {
  let s = text;
  let cut = "";
  if (s.length > MAX_REDACT_CHARS) {
    cut = `...[${s.length - MAX_REDACT_CHARS} more characters not shown]`;
    s = s.slice(0, MAX_REDACT_CHARS);
  }
  for (const re of literals) s = applyExtra(re, s);
  for (const re of extra) s = applyExtra(re, s);
  for (const rule of BUILT_IN_RULES) {
    if ("apply" in rule) s = rule.apply(s);
    else s = typeof rule.to === "string" ? s.replace(rule.re, rule.to) : s.replace(rule.re, rule.to);
  }
  return s + cut;
}

/** Keys whose values are secrets whatever they look like (`natsPassword`, `client_secret`, `authorization`). */
const SECRET_KEY_NAME = /(?:^pwd|password|passwd|passphrase|secret|token|authorization|api[_-]?key|nkey|creds)$/i;

/** Whether a property of that name holds a secret. */
export const isSecretKey = (key: string): boolean => SECRET_KEY_NAME.test(key);

/** Whether a secret-named key's value is hidden: anything but null, undefined and booleans (`hasToken: false`). */
const hideable = (v: unknown): boolean => v !== null && v !== undefined && typeof v !== "boolean";

/** The value of property `key`, redacted as {@link redactDeep} does it. */
export function redactProperty(key: string, value: unknown): unknown {
  return isSecretKey(key) && hideable(value) ? REDACTED : redactDeep(value);
}

/** How deep {@link redactDeep} walks, and how many values it visits at most. */
const MAX_DEPTH = 16;
const MAX_NODES = 10_000;

/**
 * A copy of `value` for logging: strings redacted, values of secret-named keys replaced,
 * cycles cut (`[Circular]`); plain objects, arrays and class instances (their own enumerable
 * properties, as JSON.stringify sees them) are walked. Values with a `toJSON` (dates) and
 * binary data are kept as they are.
 */
export function redactDeep(value: unknown): unknown {
  const budget = { nodes: 0 };
  const ancestors = new Set<object>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === "string") return redact(v);
    if (v === null || typeof v !== "object") return v;
    if (typeof (v as { toJSON?: unknown }).toJSON === "function" || ArrayBuffer.isView(v)) return v;
    if (ancestors.has(v)) return "[Circular]";
    if (depth >= MAX_DEPTH || ++budget.nodes > MAX_NODES) return Array.isArray(v) ? "[Array]" : "[Object]";
    ancestors.add(v);
    try {
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        out[k] = isSecretKey(k) && hideable(x) ? REDACTED : walk(x, depth + 1);
      }
      return out;
    } finally {
      ancestors.delete(v);
    }
  };
  return walk(value, 0);
}
