/**
 * The supervisor's and agent-host's own classes the simulation drives (the registry, the
 * follower, the placer and its parts, the reassigner, the lifecycle, the host's heartbeat), loaded from their
 * packages' built output.
 *
 * Neither package exports them (`@cadre/supervisor` exports `Supervisor` and `placeReplicas`,
 * `@cadre/agent-host` the host), and the test package does not depend on `@cadre/supervisor`.
 * The proper home is an `./internal` export of each package plus a dependency of the test
 * package on the supervisor (STYLE.md: internals for tests go behind `./internal`); until then
 * this file finds the workspace root and imports the built files by path, in one place. The
 * types come from the sources (type-only imports, erased at run time). Needs `pnpm build`.
 */

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

type FollowModule = typeof import("../../services/supervisor/src/follow.js");
type LifecycleModule = typeof import("../../services/supervisor/src/lifecycle.js");
type PlacementModule = typeof import("../../services/supervisor/src/placement.js");
type PlacerModule = typeof import("../../services/supervisor/src/placer.js");
type QuotaModule = typeof import("../../services/supervisor/src/quota.js");
type ReassignModule = typeof import("../../services/supervisor/src/reassign.js");
type RegistryModule = typeof import("../../services/supervisor/src/registry.js");
type HeartbeatModule = typeof import("../../services/agent-host/src/heartbeat.js");

/** The classes and functions the simulation runs, as built. */
export interface Internals {
  Follower: FollowModule["Follower"];
  Lifecycle: LifecycleModule["Lifecycle"];
  placeReplicas: PlacementModule["placeReplicas"];
  Placer: PlacerModule["Placer"];
  planSpawn: QuotaModule["planSpawn"];
  Reassigner: ReassignModule["Reassigner"];
  provesHolding: ReassignModule["provesHolding"];
  Registry: RegistryModule["Registry"];
  deadHostRetentionMs: RegistryModule["deadHostRetentionMs"];
  HostHeartbeat: HeartbeatModule["Heartbeat"];
}

/** The directory holding pnpm-workspace.yaml, above this file (source or built). */
export function workspaceRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pnpm-workspace.yaml"))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error("the simulation is not inside the Cadre workspace (no pnpm-workspace.yaml above it)");
    dir = up;
  }
  return dir;
}

let loaded: Promise<Internals> | undefined;

/** Imports the built modules once. */
export function loadInternals(): Promise<Internals> {
  loaded ??= (async () => {
    const root = workspaceRoot();
    const load = async <M>(pkg: string, file: string): Promise<M> => {
      const path = join(root, pkg, "dist", file);
      if (!existsSync(path)) throw new Error(`${path} is missing: run pnpm build first`);
      return (await import(pathToFileURL(path).href)) as M;
    };
    const follow = await load<FollowModule>("services/supervisor", "follow.js");
    const lifecycle = await load<LifecycleModule>("services/supervisor", "lifecycle.js");
    const placement = await load<PlacementModule>("services/supervisor", "placement.js");
    const placer = await load<PlacerModule>("services/supervisor", "placer.js");
    const quota = await load<QuotaModule>("services/supervisor", "quota.js");
    const reassign = await load<ReassignModule>("services/supervisor", "reassign.js");
    const registry = await load<RegistryModule>("services/supervisor", "registry.js");
    const heartbeat = await load<HeartbeatModule>("services/agent-host", "heartbeat.js");
    return {
      Follower: follow.Follower,
      Lifecycle: lifecycle.Lifecycle,
      placeReplicas: placement.placeReplicas,
      Placer: placer.Placer,
      planSpawn: quota.planSpawn,
      Reassigner: reassign.Reassigner,
      provesHolding: reassign.provesHolding,
      Registry: registry.Registry,
      deadHostRetentionMs: registry.deadHostRetentionMs,
      HostHeartbeat: heartbeat.Heartbeat,
    };
  })();
  return loaded;
}
