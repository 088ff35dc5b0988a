/**
 * Backends by kind, found by core's discovery (installed packages that say `"agentbox":
 * {"backend": KIND}`, and modules listed in AGENTBOX_BACKENDS) and loaded lazily: `--backend
 * local` never loads the docker or ssh packages (or their SDKs), so a missing daemon or SSH
 * library cannot matter to it.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BackendDefinition,
  InvalidArgumentError,
  listBackends as listFound,
  loadBackend as loadFound,
  type Policy,
} from '@agentbox/core';

/** Where to look: from the working directory, and from where this CLI is installed (its own dependencies). */
function discovery(env: Readonly<Record<string, string | undefined>>) {
  return { from: [process.cwd(), dirname(fileURLToPath(import.meta.url))], env };
}

export interface LoadedBackend {
  kind: string;
  /** The definition the package registered with openSandbox. */
  definition: BackendDefinition<unknown>;
}

/** Import the package of backend `kind` (which registers it) and return its definition. */
export async function loadBackend(
  kind: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<LoadedBackend> {
  return { kind, definition: await loadFound(kind, discovery(env)) };
}

/** Every backend kind this CLI can find. */
export function listBackends(env: Readonly<Record<string, string | undefined>>): Promise<string[]> {
  return listFound(discovery(env));
}

/** Whether the backend's config schema has a `keep` switch (keep the sandbox on close). */
export function hasKeepOption(definition: BackendDefinition<unknown>): boolean {
  const shape = (definition.configSchema as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && Object.hasOwn(shape, 'keep');
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
