/** `agentbox agent`: the reference agent loop against a chat-completions model, events printed as they happen. */
import { type AgentEvent, chatCompletionsModel, runAgent } from '@agentbox/agent';
import { intFlag, noPositionals, parseCommand, SANDBOX_OPTIONS, UsageError } from '../args.js';
import { useSandbox } from '../open.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const agentCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('agent', args, {
    ...SANDBOX_OPTIONS,
    task: { type: 'string' },
    'model-url': { type: 'string' },
    model: { type: 'string' },
    'api-key-env': { type: 'string', default: 'MODEL_API_KEY' },
    'max-steps': { type: 'string' },
    'exec-timeout-ms': { type: 'string' },
  });
  noPositionals('agent', positionals);
  if (values['model-url'] === undefined)
    throw new UsageError(
      'no model: give --model-url URL (an OpenAI-compatible chat-completions endpoint) and --model NAME. ' +
        'The offline demo with a scripted model is `npm run demo` at the repository root.',
      'agent',
    );
  if (values.model === undefined) throw new UsageError('--model NAME is required with --model-url', 'agent');
  if (values.task === undefined || values.task.trim() === '')
    throw new UsageError('--task TEXT is required', 'agent');
  const maxSteps = intFlag('agent', 'max-steps', values['max-steps'], 1);
  const execTimeoutMs = intFlag('agent', 'exec-timeout-ms', values['exec-timeout-ms'], 1);
  const model = chatCompletionsModel({
    baseUrl: values['model-url'],
    model: values.model,
    apiKey: ctx.env[values['api-key-env']],
  });
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
    const run = await runAgent({
      sandbox,
      model,
      task: values.task!,
      maxSteps,
      execTimeoutMs,
      signal,
      onEvent: values.json ? (event) => printJson(event) : showEvent,
    });
    if (values.json)
      printJson({ type: 'result', finished: run.finished, steps: run.steps, answer: run.answer ?? null });
    else if (run.finished) printLine(`\n▸ finished after ${run.steps} turn(s)`);
    else printLine(`\n▸ gave up: ${run.steps} turns and the model still wanted tools`);
    return run.finished ? 0 : 1;
  });
};

function showEvent(event: AgentEvent): void {
  if (event.type === 'assistant') {
    if (event.content) printLine(`\n▸ ${event.content}`);
    return;
  }
  if (event.type !== 'tool') return;
  const args = JSON.stringify(event.call.arguments);
  printLine(`  ${event.call.name} ${args.length > 100 ? `${args.slice(0, 100)}…` : args}`);
  printLine(event.output.replace(/\n$/, '').replace(/^/gm, '  │ '));
  // A command that ran and exited non-zero failed too.
  const failed = !event.ok ? 'failed' : event.exitCode ? `failed: exit code ${event.exitCode}` : 'ok';
  printLine(`  (${failed}, ${event.durationMs.toFixed(1)} ms)`);
}
