/** `agentbox close`: remove a kept sandbox (re-open it without keep, then close it) and its record. */
import { NotFoundError } from '@agentbox/core';
import { noPositionals, parseCommand, requireId, SANDBOX_OPTIONS } from '../args.js';
import { readRecord, removeRecord } from '../kept.js';
import { openFromFlags } from '../open.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const closeCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('close', args, SANDBOX_OPTIONS);
  noPositionals('close', positionals);
  const id = requireId('close', values.id);
  let sandbox: Awaited<ReturnType<typeof openFromFlags>>;
  try {
    sandbox = await openFromFlags(values, {
      keep: false,
      mustExist: true,
      signal: ctx.interrupts.signal,
      env: ctx.env,
    });
  } catch (error) {
    // Gone already (swept, say): a record of it on that backend would only mislead later commands.
    if (error instanceof NotFoundError) await forget(id, error.backend, ctx.env);
    throw error;
  }
  await sandbox.close();
  await forget(id, sandbox.kind, ctx.env);
  if (values.json) printJson({ id: sandbox.id, removed: true });
  else printLine(`removed ${sandbox.kind} sandbox ${sandbox.id}`);
  return 0;
};

/** Remove the record of sandbox `id` when it names backend `kind`. */
async function forget(
  id: string,
  kind: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  if ((await readRecord(env, id))?.backend === kind) await removeRecord(env, id);
}
