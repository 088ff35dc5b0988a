/** The reference agent loop: ask the model, run the tool calls it makes in the sandbox, repeat. */
import { AbortedError, type SandboxBackend } from '@agentbox/core';
import { runTool, TOOLS, type ToolSettings, type ToolSpec } from './tools.js';

export interface ToolCall {
  id: string;
  name: string;
  /** Parsed arguments object (adapters decode the model's JSON). */
  arguments: unknown;
}

export type Message =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls: ToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

export interface ModelTurn {
  content: string;
  toolCalls: ToolCall[];
}

/** Anything that answers a conversation with text and tool calls: a remote API, a local model, a script. */
export interface Model {
  complete(request: {
    messages: readonly Message[];
    tools: readonly ToolSpec[];
    signal?: AbortSignal;
  }): Promise<ModelTurn>;
}

export type AgentEvent =
  | { type: 'assistant'; step: number; content: string; toolCalls: ToolCall[] }
  | {
      type: 'tool';
      step: number;
      call: ToolCall;
      /** The tool ran; a command that exited non-zero still ran (see exitCode). */
      ok: boolean;
      output: string;
      /** The command's exit code, for an exec that ran to its end. */
      exitCode?: number;
      durationMs: number;
    };

export interface RunAgentOptions extends Partial<ToolSettings> {
  sandbox: SandboxBackend;
  model: Model;
  task: string;
  system?: string;
  /** Model turns before the loop gives up (default 25). */
  maxSteps?: number;
  onEvent?: (event: AgentEvent) => void;
  signal?: AbortSignal;
}

export interface AgentRun {
  /** The model's last text, when it stopped calling tools. */
  answer: string | undefined;
  /** True when the model finished on its own, false when maxSteps ran out. */
  finished: boolean;
  steps: number;
  messages: Message[];
}

export const DEFAULT_SYSTEM_PROMPT =
  'You are an agent working in a sandbox. Use the tools to inspect and change the workspace. ' +
  'Take a checkpoint before anything destructive; roll back if a step goes wrong. ' +
  'When the task is done, answer with a short summary and no tool calls.';

export async function runAgent(options: RunAgentOptions): Promise<AgentRun> {
  const { sandbox, model, task, onEvent, signal } = options;
  const settings: ToolSettings = {
    execTimeoutMs: options.execTimeoutMs ?? 120_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
  };
  const maxSteps = options.maxSteps ?? 25;
  const tools = Object.values(TOOLS).map((t) => t.spec);
  const messages: Message[] = [
    { role: 'system', content: options.system ?? DEFAULT_SYSTEM_PROMPT },
    { role: 'user', content: task },
  ];
  for (let step = 1; step <= maxSteps; step++) {
    if (signal?.aborted)
      throw new AbortedError('the agent run was aborted', { operation: 'runAgent', cause: signal.reason });
    const turn = await model.complete({ messages, tools, signal });
    messages.push({ role: 'assistant', content: turn.content, toolCalls: turn.toolCalls });
    onEvent?.({ type: 'assistant', step, content: turn.content, toolCalls: turn.toolCalls });
    if (turn.toolCalls.length === 0) return { answer: turn.content, finished: true, steps: step, messages };
    for (const call of turn.toolCalls) {
      const started = performance.now();
      const { ok, output, exitCode } = await runTool(sandbox, call.name, call.arguments, settings, signal);
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: output });
      const durationMs = performance.now() - started;
      onEvent?.({
        type: 'tool',
        step,
        call,
        ok,
        output,
        ...(exitCode === undefined ? {} : { exitCode }),
        durationMs,
      });
    }
  }
  return { answer: undefined, finished: false, steps: maxSteps, messages };
}
