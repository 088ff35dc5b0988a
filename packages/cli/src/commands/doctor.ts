/**
 * `agentbox doctor`: each backend's own report (what it needs, what is installed and reachable
 * here, which policy controls it can enforce). Exit 1 when a checked backend is not ready.
 */
import { type DoctorReport, InvalidArgumentError, parseBackendConfig } from '@agentbox/core';
import { noPositionals, parseCommand, UsageError } from '../args.js';
import { listBackends, loadBackend, readConfig } from '../backends.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const doctorCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('doctor', args, {
    backend: { type: 'string' },
    config: { type: 'string' },
    'config-file': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  noPositionals('doctor', positionals);
  if (values.backend === undefined && (values.config !== undefined || values['config-file'] !== undefined))
    throw new UsageError('a config belongs to one backend: give --backend KIND with it', 'doctor');
  const raw = await readConfig(values);
  const kinds = values.backend === undefined ? await listBackends(ctx.env) : [values.backend];
  const reports: ({ backend: string } & DoctorReport)[] = [];
  for (const kind of kinds) reports.push({ backend: kind, ...(await doctor(kind, raw, ctx)) });
  if (values.json) printJson({ ok: reports.every((r) => r.ok), backends: reports });
  else
    for (const report of reports) {
      printLine(`${report.backend}: ${report.ok ? 'ready' : 'NOT ready'}`);
      for (const c of report.checks) printLine(`  ${c.ok ? 'ok ' : 'NO '} ${c.name}: ${c.detail}`);
      const controls = Object.entries(report.controls);
      if (controls.length > 0) printLine('  policy controls it can enforce here:');
      for (const [control, status] of controls)
        printLine(`    ${status.status === 'enforced' ? 'yes' : 'no '} ${control}: ${status.detail}`);
    }
  return reports.every((r) => r.ok) ? 0 : 1;
};

/** One backend's report; a config it refuses (e.g. ssh without a host) is a failed check. */
async function doctor(
  kind: string,
  raw: Record<string, unknown>,
  ctx: Parameters<Command>[1],
): Promise<DoctorReport> {
  const { definition } = await loadBackend(kind, ctx.env);
  if (!definition.doctor)
    return {
      ok: true,
      checks: [{ name: 'doctor', ok: true, detail: 'this backend has no checks' }],
      controls: {},
    };
  let config: unknown;
  try {
    config = parseBackendConfig(kind, definition.configSchema, raw, 'doctor');
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    const detail = `needs a config (agentbox doctor --backend ${kind} --config JSON): ${error.issues.join('; ')}`;
    return { ok: false, checks: [{ name: 'config', ok: false, detail }], controls: {} };
  }
  return definition.doctor({ config, signal: ctx.interrupts.signal });
}
