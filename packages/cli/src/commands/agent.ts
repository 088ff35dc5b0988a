/**
 * `agentbox agent`: the reference agent loop against a model through its official SDK (OpenAI or
 * any OpenAI-compatible server, Anthropic), with a fallback, the loop's limits, a kill switch and
 * a session log; events printed as they happen (JSON lines with --json).
 */
import {
  type AgentEvent,
  chooseModel,
  formatRunReport,
  ModelFlagError,
  type RunLimits,
  runAgent,
  SessionLog,
  secretsFromEnv,
} from '@agentbox/agent';
import { intFlag, noPositionals, parseCommand, SANDBOX_OPTIONS, UsageError } from '../args.js';
import { useSandbox } from '../open.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

/** A positive decimal from a flag (a cost), or a usage error naming it. */
function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(n > 0))
    throw new UsageError(`--${name} must be a positive number, not "${value}"`, 'agent');
  return n;
}

export const agentCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('agent', args, {
    ...SANDBOX_OPTIONS,
    task: { type: 'string' },
    provider: { type: 'string' },
    'model-url': { type: 'string' },
    model: { type: 'string' },
    'api-key-env': { type: 'string', default: 'MODEL_API_KEY' },
    'fallback-provider': { type: 'string' },
    'fallback-url': { type: 'string' },
    'fallback-model': { type: 'string' },
    replay: { type: 'string' },
    'max-steps': { type: 'string' },
    'max-tokens': { type: 'string' },
    'max-cost-usd': { type: 'string' },
    'max-seconds': { type: 'string' },
    'max-attempts': { type: 'string' },
    'kill-file': { type: 'string' },
    log: { type: 'string' },
    'exec-timeout-ms': { type: 'string' },
  });
  noPositionals('agent', positionals);
  if (values.task === undefined || values.task.trim() === '')
    throw new UsageError('--task TEXT is required', 'agent');
  const maxAttempts = intFlag('agent', 'max-attempts', values['max-attempts'], 1);
  let model: ReturnType<typeof chooseModel>;
  try {
    model = chooseModel(values, ctx.env, {
      apiKeyEnv: values['api-key-env'],
      ...(maxAttempts === undefined ? {} : { retry: { maxAttempts } }),
    });
  } catch (error) {
    if (error instanceof ModelFlagError) throw new UsageError(error.message, 'agent');
    throw error;
  }
  if (model === undefined)
    throw new UsageError(
      `no model: give --model-url URL (an OpenAI-compatible endpoint), or a key in ${values['api-key-env']}, ` +
        'OPENAI_API_KEY or ANTHROPIC_API_KEY, or --replay FILE. ' +
        'The offline demo with a scripted model is `npm run demo` at the repository root.',
      'agent',
    );
  const maxSeconds = intFlag('agent', 'max-seconds', values['max-seconds'], 1);
  const limits: RunLimits = {
    ...optional('maxSteps', intFlag('agent', 'max-steps', values['max-steps'], 1)),
    ...optional('maxOutputTokens', intFlag('agent', 'max-tokens', values['max-tokens'], 1)),
    ...optional('maxCostUsd', positiveNumber('max-cost-usd', values['max-cost-usd'])),
    ...optional('maxWallClockMs', maxSeconds === undefined ? undefined : maxSeconds * 1000),
  };
  const execTimeoutMs = intFlag('agent', 'exec-timeout-ms', values['exec-timeout-ms'], 1);
  const signal = ctx.interrupts.signal;
  const given = values.id !== undefined;
  // A fresh sandbox goes when the run ends (unless the config says keep); an --id one is kept.
  const request = { keep: given ? true : undefined, mustExist: given, signal, env: ctx.env };

  return useSandbox(values, request, async (sandbox) => {
    if (values.json)
      printJson({ type: 'sandbox', id: sandbox.id, backend: sandbox.kind, workdir: sandbox.workdir });
    else
      printLine(
        `▸ ${sandbox.kind} sandbox ${sandbox.id} (${given ? 'kept' : 'removed at the end'}), workdir ${sandbox.workdir}`,
      );
    const log = values.log ? new SessionLog(values.log, { secrets: secretsFromEnv(ctx.env) }) : undefined;
    const run = await runAgent({
      sandbox,
      model,
      task: values.task!,
      limits,
      ...optional('execTimeoutMs', execTimeoutMs),
      ...(values['kill-file'] ? { killSwitch: { file: values['kill-file'] } } : {}),
      ...(log ? { log } : {}),
      signal,
      onEvent: values.json ? (event) => printJson(event) : showEvent,
    }).finally(() => log?.close());
    if (values.json)
      printJson({
        type: 'result',
        finished: run.finished,
        stop: run.stop,
        steps: run.steps,
        answer: run.answer ?? null,
        usage: run.usage,
        costUsd: run.costUsd ?? null,
        checkpoints: run.checkpoints,
        rollbacks: run.rollbacks,
      });
    else {
      if (run.finished) printLine(`\n▸ finished after ${run.steps} turn(s)`);
      printLine(`\n▸ report\n${formatRunReport(run).replace(/^/gm, '  ')}`);
    }
    return run.finished ? 0 : 1;
  });
};

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function showEvent(event: AgentEvent): void {
  if (event.type === 'assistant') {
    if (event.content) printLine(`\n▸ ${event.content}`);
    return;
  }
  if (event.type === 'model') {
    const n = event.notice;
    if (n.type === 'retry') printLine(`  ↻ ${n.model}: retry ${n.attempt} in ${n.delayMs} ms (${n.error})`);
    else if (n.type === 'fallback') printLine(`  ⇢ ${n.from} failed (${n.error}); ${n.to} takes over`);
    else printLine(`  ⇠ back to ${n.model}`);
    return;
  }
  if (event.type === 'stop') {
    printLine(`\n▸ stopped: ${event.reason}: ${event.message}`);
    return;
  }
  const args = JSON.stringify(event.call.arguments);
  printLine(`  ${event.call.name} ${args.length > 100 ? `${args.slice(0, 100)}…` : args}`);
  printLine(event.output.replace(/\n$/, '').replace(/^/gm, '  │ '));
  // A command that ran and exited non-zero failed too; a denied one never ran.
  const failed =
    event.approval && !event.approval.allowed
      ? 'denied: needs approval'
      : !event.ok
        ? 'failed'
        : event.exitCode
          ? `failed: exit code ${event.exitCode}`
          : 'ok';
  printLine(`  (${failed}, ${event.durationMs.toFixed(1)} ms)`);
}
