/**
 * Opening the sandbox a command addresses. A sandbox used across CLI invocations is opened with
 * the backend's `keep` switch, so closing this process's handle leaves it in place for the next.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { SweepOptions } from '@agentbox/backend-docker';
import type { SshConfig } from '@agentbox/backend-ssh';
import {
  InvalidArgumentError,
  NotFoundError,
  openSandbox,
  type SandboxBackend,
  SandboxIdSchema,
  UnsupportedError,
} from '@agentbox/core';
import {
  dockerSweep,
  hasKeepOption,
  type LoadedBackend,
  loadBackend,
  readConfig,
  readPolicy,
  sshSweep,
} from './backends.js';

export interface SandboxFlags {
  backend: string;
  config?: string | undefined;
  'config-file'?: string | undefined;
  policy?: string | undefined;
  id?: string | undefined;
}

export interface OpenRequest {
  /**
   * true: keep the sandbox on close (it outlives this process); false: remove it on close;
   * undefined: whatever the backend config says.
   */
  keep: boolean | undefined;
  /** Refuse (NOT_FOUND) an `--id` that names no existing sandbox, where the backend can tell. */
  mustExist: boolean;
  signal?: AbortSignal | undefined;
}

export async function openFromFlags(flags: SandboxFlags, request: OpenRequest): Promise<SandboxBackend> {
  const backend = await loadBackend(flags.backend);
  const config = await readConfig(flags);
  const policy = readPolicy(flags.policy);
  if (request.keep !== undefined) {
    if (hasKeepOption(backend.definition)) config.keep = request.keep;
    else if (request.keep)
      throw new UnsupportedError(
        `the ${backend.kind} backend has no keep option, so its sandboxes cannot outlive one command`,
        { backend: backend.kind, operation: 'open' },
      );
  }
  if (flags.id !== undefined) {
    checkId(flags.id);
    if (request.mustExist && (await sandboxExists(backend, config, flags.id)) === false)
      throw new NotFoundError(
        `no ${backend.kind} sandbox "${flags.id}"${backend.kind === 'local' ? ` under ${localRoot(backend, config)}` : ''}; ` +
          `create one with \`agentbox open${backend.kind === 'local' ? '' : ` --backend ${backend.kind}`} --id ${flags.id}\``,
        { backend: backend.kind, operation: 'open', sandboxId: flags.id },
      );
  }
  return openSandbox(
    { backend: backend.kind, id: flags.id, config, ...(policy ? { policy } : {}) },
    { signal: request.signal },
  );
}

/** An id that could not name a sandbox is refused before it is used in any path. */
function checkId(id: string): void {
  const parsed = SandboxIdSchema.safeParse(id);
  if (!parsed.success)
    throw new InvalidArgumentError(`invalid --id "${id}": ${parsed.error.issues[0]?.message}`, {
      operation: 'open',
      issues: [`id: ${parsed.error.issues[0]?.message}`],
    });
}

/**
 * Whether sandbox `id` exists, where the CLI can tell without opening it — local: its directory;
 * docker: a container labelled as that sandbox; ssh: its directory on the host (both found with
 * the package's own sweep, as a dry run); undefined for a backend with neither.
 */
async function sandboxExists(
  backend: LoadedBackend,
  config: Record<string, unknown>,
  id: string,
): Promise<boolean | undefined> {
  const parsed = backend.definition.configSchema.safeParse(config);
  if (!parsed.success) return undefined; // a bad config: openSandbox reports it field by field
  if (backend.kind === 'local')
    return stat(join(resolve((parsed.data as { root: string }).root), id, 'workspace')).then(
      (st) => st.isDirectory(),
      () => false,
    );
  const sweepDocker = dockerSweep(backend);
  if (sweepDocker) {
    const { found } = await sweepDocker({
      dryRun: true,
      sandboxId: id,
      docker: (parsed.data as { docker?: SweepOptions['docker'] }).docker,
    });
    return found.some((o) => o.type === 'container' && o.role === 'sandbox');
  }
  const sweepSsh = sshSweep(backend);
  if (sweepSsh) {
    const found = await sweepSsh({ config: parsed.data as SshConfig, sandboxId: id, dryRun: true });
    return found.length > 0;
  }
  return undefined;
}

/** The local backend's root directory after its config defaults apply; undefined for an invalid config. */
export function localRoot(backend: LoadedBackend, config: Record<string, unknown>): string | undefined {
  const parsed = backend.definition.configSchema.safeParse(config);
  if (!parsed.success) return undefined;
  return resolve((parsed.data as { root: string }).root);
}

/** Open, run `use`, and close this process's handle (which leaves a kept sandbox in place). */
export async function useSandbox<T>(
  flags: SandboxFlags,
  request: OpenRequest,
  use: (sandbox: SandboxBackend) => Promise<T>,
): Promise<T> {
  const sandbox = await openFromFlags(flags, request);
  try {
    return await use(sandbox);
  } finally {
    await sandbox.close();
  }
}
