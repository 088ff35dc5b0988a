/** `agentbox close`: remove a kept sandbox (re-open it without keep, then close it). */
import { noPositionals, parseCommand, requireId, SANDBOX_OPTIONS } from '../args.js';
import { openFromFlags } from '../open.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const closeCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('close', args, SANDBOX_OPTIONS);
  noPositionals('close', positionals);
  requireId('close', values.id);
  const sandbox = await openFromFlags(values, {
    keep: false,
    mustExist: true,
    signal: ctx.interrupts.signal,
    env: ctx.env,
  });
  await sandbox.close();
  if (values.json) printJson({ id: sandbox.id, removed: true });
  else printLine(`removed ${sandbox.kind} sandbox ${sandbox.id}`);
  return 0;
};
