/**
 * The script behaviour: a deterministic stand-in for a real agent, for demos and tests. It can
 * delegate, take time, fail and answer badly on purpose, all reproducibly from its seed.
 */

import type { ScriptBehaviour, SubtaskSpec } from "@cadre/protocol";
import { BehaviourFailedError } from "@cadre/protocol";
import { sleep } from "@cadre/runtime";
import { rollsFor } from "./random.js";
import { renderTemplate, templateScope } from "./template.js";
import type { Behaviour, BehaviourContext, ChildOutcome } from "./types.js";

/**
 * What a script returns when it rolls an invalid answer: a bare string fails nearly every
 * object schema, which is what exercises the host's output validation and retry.
 */
export const INVALID_OUTPUT = "cadre:invalid-output";

/** How often a gated attempt re-reads its gate. */
const GATE_POLL_MS = 100;

function pickDuration(spec: ScriptBehaviour["sleepMs"], roll: number): number {
  if (typeof spec === "number") return spec;
  const [min, max] = spec;
  return min + Math.min(max - min, Math.floor(roll * (max - min + 1)));
}

/**
 * Builds a script behaviour from its (parsed, defaults applied) spec. One is made per actor, so
 * what it counts (the attempts it ran, for `sleepGrowthMs`) is that actor's.
 */
export function createScriptBehaviour(
  spec: ScriptBehaviour,
  actor: { replacement: boolean } = { replacement: false },
): Behaviour {
  let runs = 0;
  return {
    plan(ctx: BehaviourContext): SubtaskSpec[] {
      const scope = templateScope(ctx.task, ctx.attempt);
      const subtasks: SubtaskSpec[] = [];
      for (const d of spec.delegate) {
        for (let index = 0; index < d.count; index++) {
          const input = renderTemplate(d.input, { ...scope, index }) as Record<string, unknown>;
          subtasks.push({ kind: d.kind, input, ...(d.priority !== undefined ? { priority: d.priority } : {}) });
        }
      }
      return subtasks;
    },

    async run(ctx: BehaviourContext, children: ChildOutcome[]): Promise<unknown> {
      const { task, attempt } = ctx;
      // Keyed on the task's place in its workflow (its id without the workflow id), so every
      // run of a team rolls the same dice: a demo or a test replays exactly.
      const roll = rollsFor(spec.seed, task.taskId.slice(task.workflowId.length), attempt);
      // Every roll is drawn whether or not it is used, so changing one knob (say sleepMs) does
      // not shift the dice of the others and a replay stays comparable.
      const sleepRoll = roll();
      const failRoll = roll();
      const invalidRoll = roll();

      if (spec.gate) {
        while ((await ctx.state.get(spec.gate)) === undefined) await sleep(ctx.clock, GATE_POLL_MS, ctx.signal);
      }
      // The slowdown grows with the attempts this actor ran before, whatever their outcome.
      const ms = pickDuration(spec.sleepMs, sleepRoll) + runs++ * (spec.sleepGrowthMs ?? 0);
      if (ms > 0) await sleep(ctx.clock, ms, ctx.signal);
      ctx.signal.throwIfAborted();

      if (failRoll < spec.failProbability) {
        throw new BehaviourFailedError(
          `scripted failure (failProbability ${spec.failProbability}) on attempt ${attempt} of task ${task.taskId}`,
          { taskId: task.taskId, kind: task.kind, attempt, failProbability: spec.failProbability, roll: failRoll },
        );
      }
      if (invalidRoll < spec.invalidProbability) return INVALID_OUTPUT;
      if (spec.brokenUntilReplaced && !actor.replacement) return INVALID_OUTPUT;

      const outputs = children.map((c) => c.output);
      const scope = templateScope(task, attempt, outputs);
      const output = renderTemplate(spec.output, scope);
      const names = Object.keys(spec.state);
      if (names.length > 0) {
        // Rendered once, outside the transaction function: it may run again after a conflict.
        const values = renderTemplate(spec.state, { ...scope, output }) as Record<string, unknown>;
        await ctx.state.transact(names, () => values);
      }
      return output;
    },
  };
}
