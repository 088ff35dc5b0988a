/**
 * `agentbox sweep`: remove sandboxes left behind. local: the CLI's own sweep of the root
 * directory; docker: the package's `sweepDocker`; another backend: its `sweep<Kind>` export if
 * it has one, else a typed UNSUPPORTED error.
 */
import { resolve } from 'node:path';
import type { SweepOptions } from '@agentbox/backend-docker';
import { parseBackendConfig, UnsupportedError } from '@agentbox/core';
import { intFlag, noPositionals, parseCommand } from '../args.js';
import { dockerSweep, type LoadedBackend, loadBackend, packageSweep, readConfig } from '../backends.js';
import { printError, printJson, printLine } from '../output.js';
import { sweepLocal } from '../sweep-local.js';
import type { Command } from './context.js';

interface SweepRequest {
  dryRun: boolean;
  olderThanMs: number | undefined;
  sandboxId: string | undefined;
  json: boolean;
}

export const sweepCommand: Command = async (args) => {
  const { values, positionals } = parseCommand('sweep', args, {
    backend: { type: 'string', default: 'local' },
    config: { type: 'string' },
    'config-file': { type: 'string' },
    id: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    'older-than-ms': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  noPositionals('sweep', positionals);
  const request: SweepRequest = {
    dryRun: values['dry-run'],
    olderThanMs: intFlag('sweep', 'older-than-ms', values['older-than-ms'], 0),
    sandboxId: values.id,
    json: values.json,
  };
  const backend = await loadBackend(values.backend);
  const raw = await readConfig(values);
  if (backend.kind !== 'local' && backend.kind !== 'docker') return sweepOther(backend, raw, request);
  const config = parseBackendConfig(backend.kind, backend.definition.configSchema, raw, 'sweep');
  if (backend.kind === 'local') return sweepLocalCommand(resolve((config as { root: string }).root), request);
  return sweepDockerCommand(backend, (config as { docker?: SweepOptions['docker'] }).docker, request);
};

async function sweepLocalCommand(root: string, request: SweepRequest): Promise<number> {
  const swept = await sweepLocal({
    root,
    dryRun: request.dryRun,
    olderThanMs: request.olderThanMs,
    sandboxId: request.sandboxId,
  });
  if (request.json) {
    printJson({ backend: 'local', root, dryRun: request.dryRun, sandboxes: swept });
    return 0;
  }
  if (swept.length === 0) {
    printLine(`no local sandboxes to sweep under ${root}`);
    return 0;
  }
  printLine(
    `${request.dryRun ? 'would remove' : 'removed'} ${swept.length} local sandbox(es) under ${root}:`,
  );
  for (const s of swept)
    printLine(`  ${s.id}  created ${s.createdAt}  (${Math.round(s.ageMs / 1000)} s ago)`);
  return 0;
}

async function sweepDockerCommand(
  backend: LoadedBackend,
  docker: SweepOptions['docker'],
  request: SweepRequest,
): Promise<number> {
  const sweepDocker = dockerSweep(backend);
  if (!sweepDocker)
    throw new UnsupportedError('this @agentbox/backend-docker has no sweepDocker', {
      backend: 'docker',
      operation: 'sweep',
    });
  const result = await sweepDocker({
    dryRun: request.dryRun,
    olderThanMs: request.olderThanMs,
    sandboxId: request.sandboxId,
    docker,
  });
  if (request.json) {
    printJson({ backend: 'docker', dryRun: request.dryRun, ...result });
    return result.failed.length > 0 ? 1 : 0;
  }
  const listed = request.dryRun ? result.found : result.removed;
  if (result.found.length === 0) printLine('no docker objects to sweep');
  else printLine(`${request.dryRun ? 'would remove' : 'removed'} ${listed.length} docker object(s):`);
  for (const o of listed) printLine(`  ${o.type.padEnd(9)}  ${o.name}  (sandbox ${o.sandboxId || '?'})`);
  for (const f of result.failed)
    printError(`agentbox: could not remove ${f.object.type} ${f.object.name}: ${f.error}`);
  return result.failed.length > 0 ? 1 : 0;
}

/**
 * A backend package may export `sweep<Kind>({ dryRun, olderThanMs, sandboxId, config })` (config:
 * the raw --config object, e.g. how to reach the host). A result that lists sandboxes (id, path,
 * ...) is printed a line each; anything else as JSON.
 */
async function sweepOther(
  backend: LoadedBackend,
  config: Record<string, unknown>,
  request: SweepRequest,
): Promise<number> {
  const sweep = packageSweep<(options: Record<string, unknown>) => Promise<unknown>>(backend);
  if (!sweep)
    throw new UnsupportedError(`the ${backend.kind} backend has no sweep`, {
      backend: backend.kind,
      operation: 'sweep',
    });
  const result: unknown = await sweep({
    dryRun: request.dryRun,
    olderThanMs: request.olderThanMs,
    sandboxId: request.sandboxId,
    config,
  });
  const failed = Array.isArray(result) && result.some((s) => typeof s?.error === 'string');
  if (request.json) printJson({ backend: backend.kind, dryRun: request.dryRun, result });
  else if (Array.isArray(result) && result.every(isSweptSandbox)) {
    if (result.length === 0) printLine(`no ${backend.kind} sandboxes to sweep`);
    else
      printLine(`${request.dryRun ? 'would remove' : 'swept'} ${result.length} ${backend.kind} sandbox(es):`);
    for (const s of result) {
      const processes = s.processes?.length ? `, ${s.processes.length} process(es) still in it` : '';
      const outcome = s.error ? `  NOT removed: ${s.error}` : '';
      printLine(
        `  ${s.id}  ${s.path}  (created ${s.createdAt ?? 'at an unknown time'}${processes})${outcome}`,
      );
    }
  } else printLine(JSON.stringify(result, null, 2));
  return failed ? 1 : 0;
}

/** The shape a backend's sweep returns per sandbox (ssh's `sweepSsh`, for one). */
interface SweptSandbox {
  id: string;
  path: string;
  createdAt?: string;
  processes?: number[];
  error?: string;
}

function isSweptSandbox(value: unknown): value is SweptSandbox {
  const s = value as SweptSandbox | null;
  return typeof s?.id === 'string' && typeof s.path === 'string';
}
