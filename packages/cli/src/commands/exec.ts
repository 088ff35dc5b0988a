/** `agentbox exec`: one command in a kept sandbox, output streamed, exit status passed through. */
import {
  envFlags,
  intFlag,
  parseCommand,
  RUN_OPTIONS,
  requireId,
  SANDBOX_OPTIONS,
  UsageError,
} from '../args.js';
import { useSandbox } from '../open.js';
import { printJson, resultJson } from '../output.js';
import type { Command } from './context.js';

export const execCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('exec', args, {
    ...SANDBOX_OPTIONS,
    ...RUN_OPTIONS,
    command: { type: 'string', short: 'c' },
    stdin: { type: 'boolean', default: false },
  });
  requireId('exec', values.id);
  if (values.command !== undefined && positionals.length > 0)
    throw new UsageError('give -c STRING or PROGRAM ARGS after --, not both', 'exec');
  if (values.command === undefined && positionals.length === 0)
    throw new UsageError('nothing to run: give -- PROGRAM ARGS... or -c STRING', 'exec');
  const timeoutMs = intFlag('exec', 'timeout-ms', values['timeout-ms'], 1);
  const env = envFlags('exec', values.env);
  const signal = ctx.interrupts.signal;

  return useSandbox(values, { keep: true, mustExist: true, signal, env: ctx.env }, async (sandbox) => {
    const result = await sandbox.exec(values.command ?? positionals, {
      cwd: values.cwd,
      env,
      timeoutMs,
      signal,
      // Without --stdin the command's stdin is closed, so nothing waits on this terminal.
      stdin: values.stdin ? process.stdin : undefined,
      // With --json the output goes into the one JSON result instead of streaming.
      onStdout: values.json ? undefined : (chunk) => process.stdout.write(chunk),
      onStderr: values.json ? undefined : (chunk) => process.stderr.write(chunk),
    });
    if (values.json) printJson(resultJson(result));
    return result.exitCode;
  });
};
