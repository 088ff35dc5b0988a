/**
 * `agentbox shell`: a line-by-line REPL over exec. Not a terminal: every line is its own `sh -c`
 * with stdin closed; only `cd DIR` (alone on a line) and `exit [N]` are handled here, and a line
 * that starts a full-screen program (an editor) is refused rather than left to hang.
 */
import { createInterface } from 'node:readline';
import { AbortedError, type SandboxBackend } from '@agentbox/core';
import {
  envFlags,
  intFlag,
  noPositionals,
  parseCommand,
  RUN_OPTIONS,
  requireId,
  SANDBOX_OPTIONS,
} from '../args.js';
import { useSandbox } from '../open.js';
import { printError } from '../output.js';
import { exitCodeFor, reportError } from '../report.js';
import type { Command, CommandContext } from './context.js';
import { fullScreenProgram } from './full-screen.js';

/** The status of a refused line, as a shell reports a command it cannot execute. */
const EXIT_CANNOT_RUN = 126;

interface LineSettings {
  env: Record<string, string>;
  timeoutMs: number | undefined;
  json: boolean;
}

export const shellCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('shell', args, { ...SANDBOX_OPTIONS, ...RUN_OPTIONS });
  noPositionals('shell', positionals);
  requireId('shell', values.id);
  const settings: LineSettings = {
    env: envFlags('shell', values.env),
    timeoutMs: intFlag('shell', 'timeout-ms', values['timeout-ms'], 1),
    json: values.json,
  };
  return useSandbox(
    values,
    { keep: true, mustExist: true, signal: ctx.interrupts.signal, env: ctx.env },
    (sandbox) => repl(sandbox, values.cwd, settings, ctx),
  );
};

async function repl(
  sandbox: SandboxBackend,
  startCwd: string | undefined,
  settings: LineSettings,
  ctx: CommandContext,
): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  // The prompt goes to stderr (as a shell's does), so stdout carries only the commands' output.
  const rl = createInterface({
    input: process.stdin,
    output: interactive ? process.stderr : undefined,
    terminal: interactive,
  });
  rl.setPrompt(`${sandbox.id}$ `);
  let cwd = startCwd;
  let status = 0;
  let running: AbortController | undefined;

  // Ctrl-C interrupts the running command only; at the prompt it clears the line (as sh does).
  const interrupt = () => {
    if (!running) return false;
    running.abort(new AbortedError('interrupted'));
    return true;
  };
  ctx.interrupts.intercept = (name) => name === 'SIGINT' && interrupt();
  rl.on('SIGINT', () => {
    if (interrupt()) return;
    process.stderr.write('^C\n');
    rl.prompt();
  });
  ctx.interrupts.signal.addEventListener('abort', () => rl.close(), { once: true });
  const prompt = () => {
    if (interactive) rl.prompt();
  };

  prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    const exit = /^exit(?:\s+(\d+))?$/.exec(line);
    if (exit) {
      if (exit[1] !== undefined) status = Number(exit[1]) & 0xff;
      break;
    }
    if (line === '' || line.startsWith('#')) {
      prompt();
      continue;
    }
    const program = fullScreenProgram(line);
    if (program !== undefined) {
      printError(
        `agentbox shell: not run: ${program} is a full-screen program and needs a terminal, which this shell ` +
          `does not give (each line runs with no terminal and stdin closed). To change a file, write it whole ` +
          `(agentbox exec --id ${sandbox.id} --stdin -- sh -c 'cat > FILE' < FILE) or edit it in place with sed.`,
      );
      status = EXIT_CANNOT_RUN;
      prompt();
      continue;
    }
    running = new AbortController();
    const signal = AbortSignal.any([running.signal, ctx.interrupts.signal]);
    try {
      const cd = /^cd(?:\s+(.*))?$/.exec(line);
      if (cd && !/[;&|<>`\n]/.test(cd[1] ?? '')) {
        // `cd` alone: resolved by the sandbox's shell (so ~, quotes and $VARS work), kept for later lines.
        if (cd[1] === undefined) cwd = undefined;
        else {
          const r = await sandbox.exec(`cd ${cd[1]} >/dev/null && pwd`, { cwd, env: settings.env, signal });
          if (r.exitCode === 0) cwd = r.stdout.trimEnd().split('\n').at(-1);
          else process.stderr.write(r.stderrBytes);
          status = r.exitCode;
        }
      } else {
        const r = await sandbox.exec(line, {
          cwd,
          env: settings.env,
          timeoutMs: settings.timeoutMs,
          signal,
          onStdout: (chunk) => process.stdout.write(chunk),
          onStderr: (chunk) => process.stderr.write(chunk),
        });
        status = r.exitCode;
        if (interactive && status !== 0) printError(`[exit ${status}]`);
      }
    } catch (error) {
      if (ctx.interrupts.signal.aborted) throw error;
      if (running.signal.aborted) {
        printError('[interrupted]');
        status = 130;
      } else {
        reportError(error, settings.json);
        status = exitCodeFor(error);
      }
    } finally {
      running = undefined;
    }
    prompt();
  }
  rl.close();
  if (interactive) process.stderr.write('\n');
  return ctx.interrupts.exitCode ?? status;
}
