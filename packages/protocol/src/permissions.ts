/**
 * NATS permissions per role, generated from the operations table (who may call and who
 * answers each operation) and from what each role does on JetStream.
 *
 * Every identity may subscribe to its own replies only (`_INBOX.<its public key>.>`: clients
 * connect with that inbox prefix, runtime security.ts) and publish `$SRV.>` discovery requests.
 * A role that answers requests (services) gets `allow_responses` and subscribes to the
 * subjects of the operations it serves; a role that calls an operation may publish on its
 * subject. Beyond that:
 *
 * - supervisor: JetStream administration (it creates the streams, buckets and consumers),
 *   tasks, child notices, events, heartbeats and advisories;
 * - agent-host: its own heartbeat subject and host-operation subjects only; results, events;
 *   pulling and acking tasks; reading Cadre's buckets; writing the workflow-state bucket (not
 *   its checkpoints) and its own host record. No stream or consumer administration;
 * - monitor: heartbeats, events and the services' reports; it publishes its own events (threshold
 *   crossings) and calls the operations of its actions (throttle, cleanup, bypass);
 * - operator: every operator operation, and JetStream (it reads records and events, and
 *   checkpoints and rolls back workflow state);
 * - viewer: the read-only operations, and reading records and events. No write anywhere.
 */

import { type OperationName, operationSubject, operations, type Role } from "./operations.js";
import { BUCKETS, STREAMS, SUBJECT_PREFIX } from "./subjects.js";

/** One user's permissions, in nats-server's configuration shape. */
export interface Permissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[] };
  /** Whether the user may answer requests it received (services only). */
  allow_responses?: boolean;
}

/** A host operation of one host (or any: `*`); a partitioned one of any partition. */
const subjectOf = (name: OperationName, hostId?: string): string => operationSubject(name, hostId ?? "*");

const kvStream = (bucket: string) => `KV_${bucket}`;
const ALL_BUCKETS = Object.values(BUCKETS);

/** Reading Cadre's buckets and streams with gets and ordered consumers (watches, event reads). */
function jetstreamRead(streams: string[]): string[] {
  return [
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.NAMES",
    ...streams.flatMap((s) => [
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      `$JS.API.CONSUMER.CREATE.${s}`,
      `$JS.API.CONSUMER.CREATE.${s}.>`,
      `$JS.API.CONSUMER.DELETE.${s}.>`,
      `$JS.API.CONSUMER.INFO.${s}.>`,
      `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    ]),
    "$JS.FC.>",
  ];
}

/**
 * The permissions of a role; an agent-host's are for one host id. With the identity's public
 * key, replies are confined to its inbox; without, any inbox (`_INBOX.>`).
 */
export function permissionsFor(role: Role, hostId?: string, publicKey?: string): Permissions {
  if (role === "agent-host" && !hostId) throw new TypeError("an agent-host's permissions are for one host id");
  const names = Object.keys(operations) as OperationName[];
  const calls = names.filter((n) => operations[n].roles.includes(role)).map((n) => subjectOf(n));
  const serviceOf: Partial<Record<Role, "supervisor" | "agent-host" | "monitor">> = {
    supervisor: "supervisor",
    "agent-host": "agent-host",
    monitor: "monitor",
  };
  const serves = names.filter((n) => operations[n].service === serviceOf[role]).map((n) => subjectOf(n, hostId));
  const p = `${SUBJECT_PREFIX}`;
  const base = { publish: ["$SRV.>", ...calls], subscribe: [publicKey ? `_INBOX.${publicKey}.>` : "_INBOX.>"] };
  // The state log too: checkpoint validation reads how far back it reaches.
  const readStreams = [STREAMS.events, STREAMS.stateLog, ...ALL_BUCKETS.map(kvStream)];
  switch (role) {
    case "supervisor":
      return {
        publish: {
          allow: [
            ...base.publish,
            "$JS.API.>",
            "$JS.ACK.>",
            "$JS.FC.>",
            "$KV.>",
            `${p}.task.>`,
            `${p}.child.>`,
            `${p}.evt.>`,
            `${p}.report.supervisor.*`,
          ],
        },
        subscribe: {
          allow: [...base.subscribe, ...serves, "$SRV.>", `${p}.hb.*`, `${p}.evt.>`, "$JS.EVENT.ADVISORY.>"],
        },
        allow_responses: true,
      };
    case "agent-host":
      return {
        publish: {
          allow: [
            ...base.publish,
            `${p}.hb.${hostId}`,
            `${p}.report.agent-host.${hostId}`,
            `${p}.evt.>`,
            `${p}.result.>`,
            ...jetstreamRead(ALL_BUCKETS.map(kvStream)),
            `$JS.API.CONSUMER.INFO.${STREAMS.tasks}.*`,
            `$JS.API.CONSUMER.MSG.NEXT.${STREAMS.tasks}.*`,
            `$JS.ACK.${STREAMS.tasks}.>`,
            `$KV.${BUCKETS.state}.>`,
            `$KV.${BUCKETS.registry}.host.${hostId}`,
            // Budgets' ledgers, providers' limits and the call journal (llm.ts), shared by hosts.
            `$KV.${BUCKETS.llm}.>`,
          ],
          // Agents write workflow state in transactions; checkpoints are the operator's.
          deny: [`$KV.${BUCKETS.state}.*._ckpt.>`],
        },
        subscribe: { allow: [...base.subscribe, ...serves, "$SRV.>", `${p}.child.>`] },
        allow_responses: true,
      };
    case "monitor":
      return {
        publish: { allow: [...base.publish, ...jetstreamRead(readStreams), `${p}.evt.>`] },
        subscribe: { allow: [...base.subscribe, ...serves, "$SRV.>", `${p}.hb.*`, `${p}.evt.>`, `${p}.report.>`] },
        allow_responses: true,
      };
    case "operator":
      return {
        // Its state commands announce what they did (STATE_ROLLED_BACK): events too.
        publish: { allow: [...base.publish, "$JS.API.>", "$JS.FC.>", "$JS.ACK.>", "$KV.>", `${p}.evt.>`] },
        subscribe: { allow: [...base.subscribe, `${p}.evt.>`, `${p}.hb.*`] },
      };
    case "viewer":
      return {
        publish: { allow: [...base.publish, ...jetstreamRead(readStreams)] },
        subscribe: { allow: [...base.subscribe, `${p}.evt.>`] },
      };
  }
}

/** One identity of a deployment. */
export interface Identity {
  /** `supervisor`, `monitor`, `operator`, `viewer`, or the host id of an agent-host. */
  name: string;
  role: Role;
  /** The nkey user's public key (`U...`). */
  publicKey: string;
  hostId?: string;
}

/**
 * nats-server's `authorization` block for the identities: one nkey user each, with its role's
 * permissions. No anonymous user: a client without an identity is refused.
 */
export function authorizationConfig(identities: Identity[]): string {
  const users = identities.map((i) => {
    const perms = permissionsFor(i.role, i.hostId, i.publicKey);
    return `    { # ${i.name} (${i.role})\n      nkey: ${i.publicKey}\n      permissions: ${JSON.stringify(perms)}\n    }`;
  });
  return `# Generated by cadre security init: one nkey user per identity, permissions per role.\nauthorization {\n  users: [\n${users.join("\n")}\n  ]\n}\n`;
}
