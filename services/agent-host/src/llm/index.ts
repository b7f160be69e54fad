/** Model calls on an agent-host: what its llm behaviours are built with (behaviours/llm.ts). */

import { type Config, NotFoundError, type Team, TeamSchema, type TypedEvent } from "@cadre/protocol";
import {
  type Breakers,
  Budgets,
  type CadreMetrics,
  CallJournal,
  type Clock,
  type Logger,
  StateStore,
} from "@cadre/runtime";
import type { KV } from "@nats-io/kv";
import type { LlmDeps } from "../behaviours/llm.js";
import { LlmCalls } from "./calls.js";
import { SharedLimiter } from "./limiter.js";
import { isProviderFailure, ModelProvider } from "./provider.js";

export { type CallAnswer, type CallSpec, LlmCalls } from "./calls.js";
export { SharedLimiter } from "./limiter.js";
export { apiKeyOf, isProviderFailure, type LlmProvider, ModelProvider, promptBound } from "./provider.js";

/** Builds the providers of the configuration (one client, breaker and limiter each) and what calls share. */
export function createLlmDeps(d: {
  config: Config;
  llm: KV;
  registry: KV;
  hostId: string;
  clock: Clock;
  logger: Logger;
  breakers: Breakers;
  metrics?: CadreMetrics | undefined;
  emit: (event: TypedEvent) => void;
  progress: (payload: Record<string, unknown>) => void;
}): LlmDeps {
  const now = () => Date.now();
  const providers = new Map<string, ModelProvider>();
  for (const [name, p] of Object.entries(d.config.llm.providers)) {
    const limiter = p.limits && new SharedLimiter(d.llm, name, p.limits, { clock: d.clock, now });
    providers.set(
      name,
      new ModelProvider(name, p, {
        metrics: d.metrics,
        breaker: d.breakers.get("llm_provider", name, isProviderFailure),
        limiter,
      }),
    );
  }
  const teams = new StateStore(d.registry, TeamSchema, "team");
  const cache = new Map<string, Team>();
  return {
    calls: new LlmCalls({
      providers,
      journal: new CallJournal(d.llm),
      budgets: new Budgets(d.llm, { now, emit: d.emit }),
      hostId: d.hostId,
      now,
      emit: d.emit,
      progress: d.progress,
      logger: d.logger,
      metrics: d.metrics,
    }),
    team: async (teamId) => {
      let team = cache.get(teamId);
      if (!team) {
        team = (await teams.get(`team.${teamId}`))?.value;
        if (!team) throw new NotFoundError("team", teamId);
        cache.set(teamId, team);
      }
      return team;
    },
  };
}
