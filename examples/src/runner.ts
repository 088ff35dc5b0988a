/**
 * The example runner: the reference agent loop working in a sandbox. By default "the model" is a
 * script (no account, no network) that sets up a project, checkpoints, makes a destructive
 * mistake, notices, and rolls back. Point it at any chat-completions endpoint to use a real model.
 *
 *   pnpm demo                                   # local backend, scripted model
 *   pnpm demo -- --backend docker               # a hardened container (needs a running dockerd)
 *   pnpm demo -- --backend ssh --config-file ssh.json   # a workspace on an SSH host
 *   pnpm demo -- --model-url http://127.0.0.1:8000/v1 --model NAME --task "..."
 *
 * `--config JSON` (or `--config-file PATH`) is the backend's config, e.g. for ssh
 * `{"host": "...", "user": "...", "auth": {"type": "agent"}, "knownHostsFile": "..."}`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type AgentEvent,
  chatCompletionsModel,
  type Message,
  runAgent,
  scriptedModel,
} from '@agentbox/agent';
import {
  InvalidArgumentError,
  isAgentboxError,
  listBackends,
  loadBackend,
  openSandbox,
} from '@agentbox/core';

// An error ends the run with its code and message, no stack: a typed one says what to do (a bad
// config, no daemon, no model server). AGENTBOX_DEBUG=1 adds the stack and the causes.
process.on('uncaughtException', (error: unknown) => {
  const code = isAgentboxError(error) ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  const debug = !['', '0', 'false'].includes(process.env.AGENTBOX_DEBUG?.trim().toLowerCase() ?? '');
  const hint = !debug && !isAgentboxError(error) ? ' (AGENTBOX_DEBUG=1 shows where it came from)' : '';
  console.error(`runner: ${code}: ${message}${hint}`);
  if (debug)
    for (let e = error, depth = 0; e !== undefined && depth < 8; e = (e as Error).cause, depth++) {
      console.error(`${depth ? 'caused by: ' : ''}${e instanceof Error ? e.stack : JSON.stringify(e)}`);
      if (!(e instanceof Error)) break;
    }
  process.exit(1);
});

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'local' },
    config: { type: 'string' },
    'config-file': { type: 'string' },
    'model-url': { type: 'string' },
    model: { type: 'string', default: 'default' },
    task: { type: 'string', default: 'Set up a tiny shell project, then clean up the workspace safely.' },
  },
});
const backend = values.backend!;
// The backend is found by kind (installed packages that say they are one, AGENTBOX_BACKENDS) and loaded.
try {
  await loadBackend(backend, { from: [process.cwd(), import.meta.dirname] });
} catch (error) {
  if (!(error instanceof InvalidArgumentError)) throw error;
  const known = await listBackends({ from: [process.cwd(), import.meta.dirname] });
  console.error(`runner: unknown backend "${backend}"; known: ${known.join(', ')}`);
  process.exit(2);
}
const configText = values['config-file'] ? readFileSync(values['config-file'], 'utf8') : values.config;
let config: unknown;
try {
  config = configText === undefined ? undefined : JSON.parse(configText);
} catch (error) {
  console.error(`runner: the backend config is not JSON: ${(error as Error).message}`);
  process.exit(2);
}

const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;
const indent = (text: string) => text.replace(/\n$/, '').replace(/^/gm, '  │ ');

/** Sleepers (from the runaway command) still running with their cwd in the sandbox's workdir. */
const COUNT_SLEEPERS = `n=0
for p in /proc/[0-9]*; do
  case "$(readlink "$p/cwd" 2>/dev/null)" in "$PWD" | "$PWD"/*) ;; *) continue ;; esac
  case "$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null)" in "sleep 3"[01]" "*) n=$((n + 1)) ;; esac
done
echo "still here; sleepers left: $n"`;

/** What the scripted model does: one tool call per turn, reading results where it needs them. */
const lastResult = (messages: readonly Message[]) => (messages.at(-1) as { content: string }).content;
let checkpointId = '';
const script = scriptedModel([
  turn('Set up the project.', 'write_file', {
    path: 'project/README.md',
    content: '# notes\nThe agent keeps its work here.\n',
  }),
  turn('Add the app.', 'write_file', {
    path: 'project/src/app.sh',
    content: '#!/bin/sh\necho "hello from the app"\n',
  }),
  turn('Run it.', 'exec', { command: 'cd project && chmod +x src/app.sh && ./src/app.sh && ls -l src' }),
  turn('Checkpoint before cleaning up.', 'checkpoint', { label: 'before cleanup' }),
  (messages) => {
    checkpointId = /checkpoint (\S+)/.exec(lastResult(messages))?.[1] ?? '';
    return call('Clean up (a destructive mistake).', 'exec', {
      command: 'rm -rf project/src && echo "oops" > project/README.md && ls -R project',
    });
  },
  turn('Check the app still runs.', 'exec', { command: './project/src/app.sh' }),
  (messages) =>
    call(`That broke it (${firstLine(lastResult(messages))}): roll back.`, 'rollback', { id: checkpointId }),
  turn('Verify.', 'exec', { command: 'cat project/README.md && ./project/src/app.sh' }),
  turn('A runaway command is cut off by its timeout, with its whole process tree.', 'exec', {
    command: 'echo starting; sleep 30 & sleep 31',
    timeoutMs: 500,
  }),
  // The sandbox's processes are those working inside it: count the sleepers whose cwd is here.
  turn('The sandbox is still usable.', 'exec', { command: COUNT_SLEEPERS }),
  { content: 'Done: the project is set up, and the mistaken cleanup was rolled back.', toolCalls: [] },
]);

function call(thought: string, name: string, args: unknown) {
  return { content: thought, toolCalls: [{ id: crypto.randomUUID().slice(0, 8), name, arguments: args }] };
}
function turn(thought: string, name: string, args: unknown) {
  return () => call(thought, name, args);
}
function firstLine(text: string) {
  return text.split('\n')[0];
}

const model = values['model-url']
  ? chatCompletionsModel({
      baseUrl: values['model-url'],
      model: values.model!,
      apiKey: process.env.MODEL_API_KEY,
    })
  : script;

console.log(bold(`▸ open a ${backend} sandbox`));
await using sandbox = await openSandbox({ backend, config });
const enforced = Object.entries(sandbox.enforcement)
  .filter(([, s]) => s.status === 'enforced')
  .map(([control]) => control);
console.log(`  id ${sandbox.id}, workdir ${sandbox.workdir}, isolation: ${sandbox.capabilities.isolation}`);
console.log(
  `  enforced: ${enforced.length ? enforced.join(', ') : 'nothing (this backend isolates nothing)'}`,
);

const show = (event: AgentEvent) => {
  if (event.type === 'assistant') {
    if (event.content) console.log(`\n${bold(`▸ ${event.content}`)}`);
    return;
  }
  const args = JSON.stringify(event.call.arguments);
  console.log(`  ${event.call.name} ${args.length > 100 ? `${args.slice(0, 100)}…` : args}`);
  console.log(indent(event.output));
  console.log(`  (${event.ok ? 'ok' : 'failed'}, ${event.durationMs.toFixed(1)} ms)`);
};

const run = await runAgent({ sandbox, model, task: values.task!, onEvent: show });
console.log(`\n${bold('▸ finished')}: ${run.finished ? `after ${run.steps} turns` : 'ran out of turns'}`);
const checkpoints = await sandbox.listCheckpoints();
console.log(`  checkpoints: ${checkpoints.map((c) => `${c.id} (${c.label})`).join(', ')}`);
