/**
 * Backends by kind, loaded lazily: `--backend local` never loads the docker or ssh packages (or
 * their SDKs), so a missing daemon or SSH library cannot matter to it.
 */
import { readFile } from 'node:fs/promises';
import type { SweepOptions, SweepResult } from '@agentbox/backend-docker';
import type { SshSweepOptions, SweptSshSandbox } from '@agentbox/backend-ssh';
import {
  AgentboxError,
  type BackendDefinition,
  defaultRegistry,
  InvalidArgumentError,
  type Policy,
} from '@agentbox/core';

type BackendModule = Record<string, unknown>;

const LOADERS: Record<string, () => Promise<BackendModule>> = {
  local: () => import('@agentbox/backend-local'),
  docker: () => import('@agentbox/backend-docker'),
  ssh: () => import('@agentbox/backend-ssh'),
};

export const BACKEND_KINDS = Object.keys(LOADERS);

export interface LoadedBackend {
  kind: string;
  /** The package's exports (for optional extras such as a sweep function). */
  module: BackendModule;
  /** The definition the package registered with openSandbox. */
  definition: BackendDefinition<unknown>;
}

/** Import the package of backend `kind` (which registers it) and return its definition. */
export async function loadBackend(kind: string): Promise<LoadedBackend> {
  const load = Object.hasOwn(LOADERS, kind) ? LOADERS[kind] : undefined;
  if (!load)
    throw new InvalidArgumentError(`unknown backend "${kind}"; known: ${BACKEND_KINDS.join(', ')}`, {
      operation: 'open',
      issues: [`--backend: unknown kind "${kind}"`],
    });
  let module: BackendModule;
  try {
    module = await load();
  } catch (error) {
    throw new AgentboxError(`cannot load @agentbox/backend-${kind}: ${(error as Error).message}`, {
      backend: kind,
      operation: 'open',
      cause: error,
    });
  }
  const definition = defaultRegistry.get(kind);
  if (!definition)
    throw new AgentboxError(`@agentbox/backend-${kind} loaded but registered no "${kind}" backend`, {
      backend: kind,
      operation: 'open',
    });
  return { kind, module, definition };
}

/** Whether the backend's config schema has a `keep` switch (keep the sandbox on close). */
export function hasKeepOption(definition: BackendDefinition<unknown>): boolean {
  const shape = (definition.configSchema as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && Object.hasOwn(shape, 'keep');
}

/** The backend package's own sweep (`sweep<Kind>`, e.g. `sweepSsh`), when it exports one. */
export function packageSweep<Sweep>(backend: LoadedBackend): Sweep | undefined {
  const sweep = backend.module[`sweep${backend.kind[0]!.toUpperCase()}${backend.kind.slice(1)}`];
  return typeof sweep === 'function' ? (sweep as Sweep) : undefined;
}

/** The docker package's `sweepDocker` (used for `sweep` and to tell whether a sandbox exists). */
export function dockerSweep(backend: LoadedBackend) {
  return backend.kind === 'docker'
    ? packageSweep<(options: SweepOptions) => Promise<SweepResult>>(backend)
    : undefined;
}

/** The ssh package's `sweepSsh` (used for `sweep` and to tell whether a sandbox exists). */
export function sshSweep(backend: LoadedBackend) {
  return backend.kind === 'ssh'
    ? packageSweep<(options: SshSweepOptions) => Promise<SweptSshSandbox[]>>(backend)
    : undefined;
}

/** The backend config from `--config JSON` or `--config-file PATH` (an empty object when neither). */
export async function readConfig(flags: {
  config?: string | undefined;
  'config-file'?: string | undefined;
}): Promise<Record<string, unknown>> {
  if (flags.config !== undefined && flags['config-file'] !== undefined)
    throw new InvalidArgumentError('give --config or --config-file, not both', { operation: 'open' });
  if (flags['config-file'] !== undefined) {
    const path = flags['config-file'];
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new InvalidArgumentError(`cannot read --config-file ${path}: ${(error as Error).message}`, {
        operation: 'open',
        subject: path,
        cause: error,
      });
    }
    return jsonObject('--config-file', text);
  }
  return flags.config === undefined ? {} : jsonObject('--config', flags.config);
}

/** The policy from `--policy JSON` (validated later by openSandbox). */
export function readPolicy(text: string | undefined): Policy | undefined {
  return text === undefined ? undefined : (jsonObject('--policy', text) as Policy);
}

function jsonObject(flag: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${flag} is not valid JSON: ${(error as Error).message}`, {
      operation: 'open',
      issues: [`${flag}: not valid JSON`],
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`${flag} must be a JSON object`, {
      operation: 'open',
      issues: [`${flag}: must be a JSON object`],
    });
  return value as Record<string, unknown>;
}
