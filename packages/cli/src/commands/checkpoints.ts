/** `agentbox checkpoint`, `rollback` and `checkpoints`: a kept sandbox's filesystem history. */
import type { CheckpointInfo } from '@agentbox/core';
import { noPositionals, parseCommand, requireId, SANDBOX_OPTIONS, UsageError } from '../args.js';
import { useSandbox } from '../open.js';
import { checkpointJson, printJson, printLine, slowStep } from '../output.js';
import type { Command } from './context.js';

export const checkpointCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('checkpoint', args, {
    ...SANDBOX_OPTIONS,
    label: { type: 'string' },
  });
  noPositionals('checkpoint', positionals);
  requireId('checkpoint', values.id);
  const signal = ctx.interrupts.signal;
  return useSandbox(values, { keep: true, mustExist: true, signal, env: ctx.env }, async (sandbox) => {
    const info = await slowStep(
      `checkpoint of ${sandbox.id}`,
      () => sandbox.checkpoint({ label: values.label, signal }),
      {
        env: ctx.env,
      },
    );
    // Plain output is the id alone, so that `CP=$(agentbox checkpoint ...)` works.
    if (values.json) printJson(checkpointJson(info));
    else printLine(info.id);
    return 0;
  });
};

export const rollbackCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('rollback', args, SANDBOX_OPTIONS);
  requireId('rollback', values.id);
  const [checkpointId, ...extra] = positionals;
  if (checkpointId === undefined) throw new UsageError('CHECKPOINT_ID is required', 'rollback');
  noPositionals('rollback', extra);
  const signal = ctx.interrupts.signal;
  return useSandbox(values, { keep: true, mustExist: true, signal, env: ctx.env }, async (sandbox) => {
    await slowStep(
      `rollback of ${sandbox.id} to ${checkpointId}`,
      () => sandbox.rollback(checkpointId, { signal }),
      {
        env: ctx.env,
      },
    );
    if (values.json) printJson({ id: sandbox.id, rolledBackTo: checkpointId });
    else printLine(`rolled ${sandbox.id} back to ${checkpointId}`);
    return 0;
  });
};

export const checkpointsCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('checkpoints', args, SANDBOX_OPTIONS);
  noPositionals('checkpoints', positionals);
  requireId('checkpoints', values.id);
  return useSandbox(
    values,
    { keep: true, mustExist: true, signal: ctx.interrupts.signal, env: ctx.env },
    async (sandbox) => {
      const list = await sandbox.listCheckpoints();
      if (values.json) printJson(list.map(checkpointJson));
      else printTable(list);
      return 0;
    },
  );
};

function printTable(list: readonly CheckpointInfo[]): void {
  if (list.length === 0) {
    printLine('no checkpoints');
    return;
  }
  const rows = [
    ['ID', 'CREATED', 'ENTRIES', 'BYTES STORED', 'LABEL'],
    ...list.map((c) => [c.id, c.createdAt, String(c.entries), String(c.bytesStored), c.label ?? '']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows)
    printLine(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}
