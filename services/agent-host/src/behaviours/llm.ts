/**
 * The llm behaviour: a conversation with a model through the provider's client (llm/provider.ts).
 * The system message and the user prompt (a template over the task) go in. An agent's first
 * answer is its output: its JSON when it parses, else `{ text }`. A director's or lead's model is
 * offered each kind it `delegates` to as a tool; each tool call becomes a subtask, delegated
 * through the supervisor's policy (the calls of one turn in parallel), and its output, or the
 * typed refusal (`CIRCULAR_DELEGATION`, an input that breaks the kind's input schema), goes back
 * as the tool's message until the model answers, for at most `maxTurns` calls.
 *
 * Around every call (llm/calls.ts): the journal is read first (a turn an earlier attempt
 * completed is replayed, not paid again); the call's worst case is reserved against the
 * workflow's and the kind's budgets and taken from the provider's shared limits; the answer is
 * journaled before anything is done with it.
 */

import {
  BehaviourFailedError,
  compileOutputSchema,
  formatIssues,
  type Kind,
  type LlmBehaviour,
  type SubtaskSpec,
  type Team,
  toCadreError,
} from "@cadre/protocol";
import type { LlmCalls } from "../llm/calls.js";
import type { ChatMessage, ChatTool } from "../llm/provider.js";
import { renderTemplate, templateScope } from "./template.js";
import type { Behaviour, BehaviourContext, ChildOutcome } from "./types.js";

/** What an llm behaviour needs of its host. */
export interface LlmDeps {
  calls: LlmCalls;
  /** The team of the actor (for the tools: the delegated kinds' descriptions and input schemas). */
  team(teamId: string): Promise<Team>;
}

/** Builds the llm behaviour of a kind. */
export function createLlmBehaviour(spec: LlmBehaviour, kind: Kind, deps: LlmDeps): Behaviour {
  const schema = Object.keys(kind.output).length > 0 ? kind.output : undefined;
  return {
    // No plan: a director's delegations are the model's tool calls, made while it runs.
    ...(kind.role === "agent" ? { plan: () => [] } : {}),
    run: (ctx) => converse(spec, kind, schema, deps, ctx),
  };
}

/** The tools of a director: one per kind it may delegate to. */
function toolsOf(spec: LlmBehaviour, team: Team | undefined): ChatTool[] {
  if (!team) return [];
  return spec.delegates.map((name) => {
    const k = team.kinds[name];
    const parameters = k && Object.keys(k.input).length > 0 ? k.input : { type: "object", additionalProperties: true };
    return {
      type: "function",
      function: {
        name,
        description: (k?.description ?? `delegate a task to a ${name}`).slice(0, 1000),
        parameters,
      },
    };
  });
}

async function converse(
  spec: LlmBehaviour,
  kind: Kind,
  schema: Record<string, unknown> | undefined,
  deps: LlmDeps,
  ctx: BehaviourContext,
): Promise<unknown> {
  const { task, attempt } = ctx;
  const rendered = renderTemplate(spec.prompt, templateScope(task, attempt));
  const prompt = typeof rendered === "string" ? rendered : JSON.stringify(rendered);
  const messages: ChatMessage[] = [
    ...(spec.system ? [{ role: "system" as const, content: spec.system }] : []),
    { role: "user", content: prompt },
  ];
  const team = spec.delegates.length > 0 ? await deps.team(task.teamId) : undefined;
  const tools = toolsOf(spec, team);
  // Children are numbered on across turns, so a replay delegates the same ids.
  let index = 0;
  for (let turn = 0; turn < spec.maxTurns; turn++) {
    const answer = await deps.calls.call(ctx, turn, {
      spec,
      kind,
      messages,
      tools,
      schema: schema && { name: task.kind.replace(/-/g, "_"), schema },
    });
    if (answer.toolCalls.length === 0) return output(answer.content ?? "");
    messages.push({ role: "assistant", content: answer.content, tool_calls: answer.toolCalls });
    const first = index;
    index += answer.toolCalls.length;
    const replies = await Promise.all(
      answer.toolCalls.map(async (call, i) => ({
        role: "tool" as const,
        tool_call_id: call.id,
        content: JSON.stringify(await runTool(ctx, team, spec, call.function, first + i)),
      })),
    );
    messages.push(...replies);
  }
  throw new BehaviourFailedError(
    `the model did not answer within maxTurns (${spec.maxTurns}) calls: it kept calling tools; raise the kind's behaviour.maxTurns or tell it to answer`,
    { taskId: task.taskId, maxTurns: spec.maxTurns },
    { retryable: false },
  );
}

/** The answer as output: its JSON when it parses (the supervisor checks it), else `{ text }`. */
function output(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch {
    return { text: content };
  }
}

/**
 * One tool call: a subtask of the named kind with the call's arguments as input, checked against
 * the kind's input schema first. What goes back to the model: the child's output, or an error
 * with a code and a message it can act on. A refusal that waiting could fix (the supervisor not
 * answering) fails the attempt instead: the retry replays the journal and delegates again.
 */
async function runTool(
  ctx: BehaviourContext,
  team: Team | undefined,
  spec: LlmBehaviour,
  fn: { name: string; arguments: string },
  index: number,
): Promise<unknown> {
  const target = team?.kinds[fn.name];
  if (!target || !spec.delegates.includes(fn.name)) {
    return {
      error: { code: "NOT_FOUND", message: `no tool "${fn.name}"; the tools are ${spec.delegates.join(", ")}` },
    };
  }
  let input: unknown;
  try {
    input = fn.arguments.trim() === "" ? {} : JSON.parse(fn.arguments);
  } catch {
    return { error: { code: "INVALID_INPUT", message: "the arguments are not JSON" } };
  }
  const checked = compileOutputSchema(target.input).safeParse(input);
  if (!checked.success) {
    return {
      error: {
        code: "INVALID_INPUT",
        message: "the arguments break the tool's schema",
        issues: formatIssues(checked.error.issues),
      },
    };
  }
  if (!ctx.delegate) throw new TypeError("an llm director runs with delegate() in its context");
  let child: ChildOutcome;
  try {
    child = await ctx.delegate({ kind: fn.name, input: input as SubtaskSpec["input"] }, index);
  } catch (err) {
    const e = toCadreError(err);
    if (e.retryable) throw e;
    return { error: { code: e.code, message: e.message } };
  }
  return child.status === "completed"
    ? { output: child.output ?? null }
    : { error: { code: child.error?.code ?? "FAILED", message: child.error?.message ?? "the subtask failed" } };
}
