/** `cadre security init`: the identities of a deployment and the server configuration admitting them. */

import { resolve } from "node:path";
import { initSecurity } from "@cadre/runtime";
import type { Command } from "commander";
import { action, print } from "./common.js";

export function registerSecurity(program: Command): void {
  const security = program.command("security").description("identities, roles and the NATS server's users");
  security
    .command("init <dir>")
    .description(
      "generate an nkey identity per service (supervisor, monitor, each agent-host), the operator and a viewer, " +
        "and <dir>/nats.conf: the server's users with their role's permissions (start nats-server -c <dir>/nats.conf)",
    )
    .option("--hosts <ids>", "comma-separated agent-host ids", "host-1,host-2")
    .option("--rotate", "replace every existing key (restart the server and every service afterwards)")
    .option("--tls", "also a CA, the server's certificate and a client certificate per identity (mutual TLS)")
    .option(
      "--server-names <names>",
      "comma-separated DNS names the server certificate is valid for (compose services)",
      "",
    )
    .action(
      action(async (dir: string, o: { hosts: string; rotate?: boolean; tls?: boolean; serverNames: string }) => {
        const list = (v: string) =>
          v
            .split(",")
            .map((h) => h.trim())
            .filter((h) => h.length > 0);
        const files = initSecurity(resolve(dir), {
          hosts: list(o.hosts),
          keep: !o.rotate,
          tls: !!o.tls,
          serverNames: list(o.serverNames),
        });
        print(
          [
            `wrote ${files.serverConfig} (${files.identities.length} users; no anonymous access)`,
            ...files.identities.map((i) => `  ${i.name.padEnd(12)} ${i.role.padEnd(11)} ${files.credentials(i.name)}`),
            `services: --nats-creds <file> (or CADRE_NATS_CREDS); the CLI as operator: export CADRE_NATS_CREDS=${files.credentials("operator")}`,
            ...(files.tls
              ? [
                  `TLS: --nats-tls-ca ${files.tls("operator").caFile} and each identity's identities/<name>.pem and .key (--nats-tls-cert, --nats-tls-key)`,
                ]
              : []),
          ].join("\n"),
        );
      }),
    );
}
