/**
 * `agentbox sweep`: remove sandboxes left behind, through the backend definition's own sweep
 * (a typed UNSUPPORTED error for a backend without one).
 */
import { parseBackendConfig, type SweptSandbox, UnsupportedError } from '@agentbox/core';
import { intFlag, noPositionals, parseCommand } from '../args.js';
import { loadBackend, readConfig } from '../backends.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const sweepCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('sweep', args, {
    backend: { type: 'string', default: 'local' },
    config: { type: 'string' },
    'config-file': { type: 'string' },
    id: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    'older-than-ms': { type: 'string' },
    all: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  noPositionals('sweep', positionals);
  const dryRun = values['dry-run'];
  const olderThanMs = intFlag('sweep', 'older-than-ms', values['older-than-ms'], 0);
  const { kind, definition } = await loadBackend(values.backend, ctx.env);
  if (!definition.sweep)
    throw new UnsupportedError(`the ${kind} backend has no sweep`, { backend: kind, operation: 'sweep' });
  const config = parseBackendConfig(kind, definition.configSchema, await readConfig(values), 'sweep');
  const report = await definition.sweep({
    config,
    dryRun,
    olderThanMs,
    ids: values.id === undefined ? undefined : [values.id],
    all: values.all,
    signal: ctx.interrupts.signal,
  });
  const failed = report.sandboxes.some((s) => s.error !== undefined);
  if (values.json) {
    printJson({ backend: kind, location: report.location, dryRun, sandboxes: report.sandboxes });
    return failed ? 1 : 0;
  }
  const { sandboxes, location } = report;
  if (sandboxes.length === 0) printLine(`no ${kind} sandboxes to sweep ${location}`);
  else
    printLine(`${dryRun ? 'would remove' : 'removed'} ${sandboxes.length} ${kind} sandbox(es) ${location}:`);
  for (const s of sandboxes) printLine(`  ${describe(s, dryRun)}`);
  return failed ? 1 : 0;
};

function describe(s: SweptSandbox, dryRun: boolean): string {
  const created = s.createdAt ? `created ${s.createdAt}` : 'created at an unknown time';
  const resources = s.resources.map((r) => `${r.type} ${r.name}`).join(', ');
  const outcome = s.error ? `  NOT removed: ${s.error}` : !dryRun && !s.removed ? '  NOT removed' : '';
  return `${s.id || '(no sandbox id)'}  ${created}  (${resources})${outcome}`;
}
