/** The reference agent loop: ask the model, run the tool calls it makes in the sandbox, repeat. */
import { AbortedError, type SandboxBackend } from '@agentbox/core';
import { armKillSwitch, type KillSwitchOptions } from './kill-switch.js';
import { checkLimits, costOf, DEFAULT_PRICES, type ModelPrice, priceOf, type RunLimits } from './limits.js';
import type { Message, Model, ModelNotice, ModelTurn, TokenUsage, ToolCall } from './model-types.js';
import type { SessionLog } from './session-log.js';
import { runTool, type TakenCheckpoint, TOOLS, type ToolSettings } from './tools.js';

export type {
  Message,
  Model,
  ModelNotice,
  ModelRequest,
  ModelTurn,
  TokenUsage,
  ToolCall,
} from './model-types.js';

/** Why a run ended. */
export type StopReason =
  | 'finished'
  | 'max_steps'
  | 'max_input_tokens'
  | 'max_output_tokens'
  | 'max_cost'
  | 'wall_clock'
  | 'kill_switch';

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
      /** A checkpoint the call made, or the loop took before it (a destructive step). */
      checkpoint?: TakenCheckpoint;
      /** For a command that needed approval: whether it ran, and why it needed it. */
      approval?: { allowed: boolean; reasons: string[] };
      /** Skills or memory files the call wrote that the Skills Guard quarantined (kept: false) or warned about. */
      quarantined?: { path: string; target: string; verdict: string; kept: boolean }[];
    }
  | { type: 'model'; step: number; notice: ModelNotice }
  | { type: 'stop'; step: number; reason: StopReason; message: string };

export interface RunAgentOptions extends Partial<ToolSettings> {
  sandbox: SandboxBackend;
  model: Model;
  task: string;
  system?: string;
  /** Model turns before the loop gives up (default 25); the same as `limits.maxSteps`. */
  maxSteps?: number;
  /** Hard stops: tokens, estimated cost, wall-clock time, steps. */
  limits?: RunLimits;
  /** Prices per model for the cost limit, merged over {@link DEFAULT_PRICES}. */
  prices?: Readonly<Record<string, ModelPrice>>;
  /** Stops the run at its next step, and closes the sandbox. */
  killSwitch?: KillSwitchOptions;
  /** Where every step is recorded (JSON lines, secrets redacted). */
  log?: SessionLog;
  onEvent?: (event: AgentEvent) => void;
  /** Aborting it ends the run with an ABORTED error (the kill switch ends it with a report instead). */
  signal?: AbortSignal;
}

export interface AgentRun {
  /** The model's last text, when it stopped calling tools. */
  answer: string | undefined;
  /** True when the model finished on its own; false when a limit or the kill switch stopped it. */
  finished: boolean;
  /** Why the run ended, and the sentence for a person. */
  stop: { reason: StopReason; message: string };
  steps: number;
  usage: TokenUsage;
  /** Estimated, from the price table; undefined when a model that answered has no price. */
  costUsd: number | undefined;
  durationMs: number;
  /** Checkpoints taken during the run (by the model, or automatically before a destructive step), oldest first, and the rollbacks made. */
  checkpoints: TakenCheckpoint[];
  rollbacks: string[];
  /** True when the kill switch closed the sandbox. */
  sandboxClosed: boolean;
  messages: Message[];
}

export const DEFAULT_SYSTEM_PROMPT =
  'You are an agent working in a sandbox. Use the tools to inspect and change the workspace. ' +
  'Take a checkpoint before anything destructive; roll back if a step goes wrong. ' +
  'When the task is done, answer with a short summary and no tool calls.';

/** Raised inside the run when a hard limit cuts a model request or a command short. */
class HardStop extends Error {
  constructor(
    readonly reason: StopReason,
    message: string,
  ) {
    super(message);
  }
}

export async function runAgent(options: RunAgentOptions): Promise<AgentRun> {
  const { sandbox, model, task, onEvent, signal, log } = options;
  const limits: RunLimits = { ...options.limits };
  if (options.maxSteps !== undefined) limits.maxSteps ??= options.maxSteps;
  checkLimits(limits);
  const maxSteps = limits.maxSteps ?? 25;
  const prices = { ...DEFAULT_PRICES, ...options.prices };
  const settings: ToolSettings = {
    execTimeoutMs: options.execTimeoutMs ?? 120_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
    ...(options.maxResultChars === undefined ? {} : { maxResultChars: options.maxResultChars }),
    ...(options.skillsDir === undefined ? {} : { skillsDir: options.skillsDir }),
    ...(options.memoryDir === undefined ? {} : { memoryDir: options.memoryDir }),
    ...(options.reviewWrite === undefined ? {} : { reviewWrite: options.reviewWrite }),
    ...(options.guard === undefined ? {} : { guard: options.guard }),
    autoCheckpoint: options.autoCheckpoint ?? true,
  };
  // The checkpoint store opens while the model answers (its errors come again at the first
  // checkpoint): on docker that starts a helper container, which the first checkpoint before a
  // destructive step would otherwise wait for.
  if (settings.autoCheckpoint && sandbox.capabilities.checkpoints)
    void sandbox.listCheckpoints().catch(() => {});
  const tools = Object.values(TOOLS).map((t) => t.spec);
  const messages: Message[] = [
    { role: 'system', content: options.system ?? DEFAULT_SYSTEM_PROMPT },
    { role: 'user', content: task },
  ];
  const started = performance.now();
  const usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
  let costUsd: number | undefined = 0;
  const checkpoints: AgentRun['checkpoints'] = [];
  const rollbacks: string[] = [];
  let step = 0;

  // The wall clock and the caller's signal both cut a request or a command short.
  const clock = new AbortController();
  const timer =
    limits.maxWallClockMs === undefined
      ? undefined
      : setTimeout(
          () =>
            clock.abort(
              new HardStop('wall_clock', `the run took its ${limits.maxWallClockMs} ms of wall-clock time`),
            ),
          limits.maxWallClockMs,
        );
  const runSignal = signal ? AbortSignal.any([signal, clock.signal]) : clock.signal;
  const killSwitch = armKillSwitch(options.killSwitch);

  log?.write('run_start', {
    task,
    model: model.name,
    backend: sandbox.kind,
    sandboxId: sandbox.id,
    limits,
    tools: tools.map((t) => t.name),
  });
  const emit = (event: AgentEvent) => {
    onEvent?.(event);
    if (event.type === 'model') {
      const { type, ...notice } = event.notice;
      log?.write(`model_${type}`, { step: event.step, ...notice });
    }
  };

  /** The next hard stop due before another step, if any. */
  const due = (): HardStop | undefined => {
    const killed = killSwitch.check();
    if (killed) return new HardStop('kill_switch', `kill switch: ${killed}`);
    if (clock.signal.aborted) return clock.signal.reason as HardStop;
    if (limits.maxInputTokens !== undefined && usage.inputTokens >= limits.maxInputTokens)
      return new HardStop(
        'max_input_tokens',
        `input tokens ${usage.inputTokens} reached the limit of ${limits.maxInputTokens}`,
      );
    if (limits.maxOutputTokens !== undefined && usage.outputTokens >= limits.maxOutputTokens)
      return new HardStop(
        'max_output_tokens',
        `output tokens ${usage.outputTokens} reached the limit of ${limits.maxOutputTokens}`,
      );
    if (limits.maxCostUsd !== undefined && costUsd === undefined)
      return new HardStop('max_cost', 'a model without a price answered, so the cost limit cannot be kept');
    if (limits.maxCostUsd !== undefined && costUsd !== undefined && costUsd >= limits.maxCostUsd)
      return new HardStop(
        'max_cost',
        `estimated cost $${costUsd.toFixed(4)} reached the limit of $${limits.maxCostUsd.toFixed(4)}`,
      );
    return undefined;
  };

  const finish = async (reason: StopReason, message: string, answer?: string): Promise<AgentRun> => {
    let sandboxClosed = false;
    if (reason === 'kill_switch') {
      await sandbox.close();
      sandboxClosed = true;
    }
    const run: AgentRun = {
      answer,
      finished: reason === 'finished',
      stop: { reason, message },
      steps: step,
      usage: { ...usage },
      costUsd,
      durationMs: performance.now() - started,
      checkpoints,
      rollbacks,
      sandboxClosed,
      messages,
    };
    if (reason !== 'finished') emit({ type: 'stop', step, reason, message });
    log?.write('run_end', {
      reason,
      message,
      steps: step,
      usage,
      costUsd,
      durationMs: Math.round(run.durationMs),
      checkpoints,
      sandboxClosed,
    });
    return run;
  };

  const aborted = (cause: unknown) =>
    new AbortedError('the agent run was aborted', { operation: 'runAgent', cause });

  try {
    while (true) {
      if (signal?.aborted) throw aborted(signal.reason);
      const stop = due();
      if (stop) return await finish(stop.reason, stop.message);
      if (step >= maxSteps) return await finish('max_steps', `the model used all ${maxSteps} steps`);
      step++;
      const left =
        limits.maxOutputTokens === undefined
          ? undefined
          : Math.max(1, limits.maxOutputTokens - usage.outputTokens);
      let turn: ModelTurn;
      try {
        turn = await model.complete({
          messages,
          tools,
          signal: runSignal,
          ...(left === undefined ? {} : { maxOutputTokens: left }),
          notify: (notice) => emit({ type: 'model', step, notice }),
        });
      } catch (error) {
        if (clock.signal.aborted && !signal?.aborted) {
          const hard = clock.signal.reason as HardStop;
          return await finish(hard.reason, hard.message);
        }
        if (signal?.aborted) throw aborted(signal.reason);
        log?.write('run_end', { reason: 'error', message: (error as Error).message, steps: step });
        throw error;
      }
      account(turn);
      messages.push({ role: 'assistant', content: turn.content, toolCalls: turn.toolCalls });
      log?.write('model_turn', {
        step,
        model: turn.model ?? model.name,
        content: turn.content,
        toolCalls: turn.toolCalls,
        ...(turn.usage ? { usage: turn.usage } : {}),
      });
      emit({ type: 'assistant', step, content: turn.content, toolCalls: turn.toolCalls });
      if (turn.toolCalls.length === 0) return await finish('finished', 'the model answered', turn.content);
      // Over a budget: the calls of this turn are not run (the stop is hard).
      const over = due();
      if (over) return await finish(over.reason, over.message);
      for (const call of turn.toolCalls) {
        const killed = killSwitch.check();
        if (killed) return await finish('kill_switch', `kill switch: ${killed}`);
        log?.write('tool_call', { step, id: call.id, name: call.name, arguments: call.arguments });
        const startedTool = performance.now();
        let result: Awaited<ReturnType<typeof runTool>>;
        try {
          result = await runTool(sandbox, call.name, call.arguments, settings, runSignal);
        } catch (error) {
          if (clock.signal.aborted && !signal?.aborted) {
            const hard = clock.signal.reason as HardStop;
            return await finish(hard.reason, hard.message);
          }
          if (signal?.aborted) throw aborted(signal.reason);
          throw error;
        }
        const { ok, output, exitCode, checkpoint, guarded } = result;
        const approval = result.approval && {
          allowed: result.approval.allowed,
          reasons: result.approval.findings.map((f) => `${f.reason} [${f.category}]`),
        };
        if (approval) log?.write('approval', { step, id: call.id, ...approval });
        const durationMs = performance.now() - startedTool;
        messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: output });
        log?.write('tool_result', {
          step,
          id: call.id,
          name: call.name,
          ok,
          ...(exitCode === undefined ? {} : { exitCode }),
          output,
          durationMs: Math.round(durationMs),
        });
        if (checkpoint) {
          checkpoints.push(checkpoint);
          log?.write('checkpoint', { step, ...checkpoint });
        }
        const quarantined = guarded?.map((o) => ({
          path: o.path,
          target: o.report.target,
          verdict: o.report.verdict,
          kept: o.kept,
        }));
        for (const q of quarantined ?? [])
          log?.write(q.kept ? 'guard_warning' : 'guard_quarantine', { step, ...q });
        if (result.rolledBackTo !== undefined) {
          rollbacks.push(result.rolledBackTo);
          log?.write('rollback', { step, id: result.rolledBackTo });
        }
        emit({
          type: 'tool',
          step,
          call,
          ok,
          output,
          ...(exitCode === undefined ? {} : { exitCode }),
          durationMs,
          ...(checkpoint ? { checkpoint } : {}),
          ...(approval ? { approval } : {}),
          ...(quarantined ? { quarantined } : {}),
        });
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
    killSwitch.disarm();
  }

  function account(turn: ModelTurn) {
    if (!turn.usage) return;
    usage.inputTokens += turn.usage.inputTokens;
    usage.outputTokens += turn.usage.outputTokens;
    const price = priceOf(turn.model ?? model.name ?? '', prices);
    costUsd = price === undefined || costUsd === undefined ? undefined : costUsd + costOf(turn.usage, price);
  }
}

/** The end of a run in a few lines: why it stopped, what it used, what can be undone. */
export function formatRunReport(run: AgentRun): string {
  const lines = [
    `stopped: ${run.stop.reason} — ${run.stop.message}`,
    `steps: ${run.steps}, ${(run.durationMs / 1000).toFixed(1)} s`,
    `tokens: ${run.usage.inputTokens} in, ${run.usage.outputTokens} out; estimated cost ${
      run.costUsd === undefined ? 'unknown (a model has no price)' : `$${run.costUsd.toFixed(4)}`
    }`,
    `checkpoints: ${
      run.checkpoints
        .map((c) => `${c.id}${c.label ? ` (${c.label})` : ''}${c.auto ? ` [automatic: ${c.auto}]` : ''}`)
        .join(', ') || 'none'
    }`,
  ];
  if (run.rollbacks.length) lines.push(`rolled back to: ${run.rollbacks.join(', ')}`);
  if (run.sandboxClosed) lines.push('the sandbox was closed');
  return lines.join('\n');
}
