/** Behaviours: what an actor does with a task, chosen by its kind's `behaviour.type`. */

import { type Kind, NotFoundError } from "@cadre/protocol";
import { createCommandBehaviour } from "./command.js";
import { createLlmBehaviour, type LlmDeps } from "./llm.js";
import { createScriptBehaviour } from "./script.js";
import type { Behaviour } from "./types.js";

/** Builds the behaviour of a kind (parsed, defaults applied). */
export function createBehaviour(
  kind: Kind,
  actor: { replacement: boolean } = { replacement: false },
  llm?: LlmDeps,
): Behaviour {
  const b = kind.behaviour;
  switch (b.type) {
    case "script":
      return createScriptBehaviour(b, actor);
    case "command":
      return createCommandBehaviour(b);
    case "llm": {
      if (!llm?.calls.has(b.provider)) {
        throw new NotFoundError("llm provider (llm.providers in this host's configuration)", b.provider);
      }
      return createLlmBehaviour(b, kind, llm);
    }
  }
}

export { createCommandBehaviour, MAX_STDOUT_BYTES, STDERR_TAIL_BYTES } from "./command.js";
export { createLlmBehaviour, type LlmDeps } from "./llm.js";
export type { Rolls } from "./random.js";
export { hashString, mulberry32, rollsFor } from "./random.js";
export { createScriptBehaviour, INVALID_OUTPUT } from "./script.js";
export { renderTemplate, templateScope } from "./template.js";
export type { Behaviour, BehaviourContext, ChildOutcome } from "./types.js";
