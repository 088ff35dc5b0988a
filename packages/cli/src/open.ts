/**
 * Opening the sandbox a command addresses. A sandbox used across CLI invocations is opened with
 * the backend's `keep` switch, so closing this process's handle leaves it in place for the next.
 */
import {
  InvalidArgumentError,
  NotFoundError,
  openSandbox,
  type SandboxBackend,
  SandboxIdSchema,
  UnsupportedError,
} from '@agentbox/core';
import { hasKeepOption, type LoadedBackend, loadBackend, readConfig, readPolicy } from './backends.js';
import { progressPrinter } from './output.js';

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
  /** The environment (AGENTBOX_BACKENDS); default process.env. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

export async function openFromFlags(flags: SandboxFlags, request: OpenRequest): Promise<SandboxBackend> {
  const backend = await loadBackend(flags.backend, request.env ?? process.env);
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
    const found = request.mustExist
      ? await findSandbox(backend, config, flags.id, request.signal)
      : undefined;
    if (found && !found.exists)
      throw new NotFoundError(
        `no ${backend.kind} sandbox "${flags.id}" ${found.location}; ` +
          `create one with \`agentbox open${backend.kind === 'local' ? '' : ` --backend ${backend.kind}`} --id ${flags.id}\``,
        { backend: backend.kind, operation: 'open', sandboxId: flags.id },
      );
  }
  return openSandbox(
    { backend: backend.kind, id: flags.id, config, ...(policy ? { policy } : {}) },
    // An image pull can take a while: say so on stderr.
    { signal: request.signal, onProgress: progressPrinter() },
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
 * Whether sandbox `id` exists, where the backend can tell without opening it: its sweep, as a
 * dry run for that id. Undefined for a backend without a sweep, or with a config openSandbox
 * will report field by field.
 */
async function findSandbox(
  backend: LoadedBackend,
  config: Record<string, unknown>,
  id: string,
  signal: AbortSignal | undefined,
): Promise<{ exists: boolean; location: string } | undefined> {
  const { sweep, configSchema } = backend.definition;
  const parsed = configSchema.safeParse(config);
  if (!sweep || !parsed.success) return undefined;
  const report = await sweep({ config: parsed.data, dryRun: true, ids: [id], signal });
  return { exists: report.sandboxes.some((s) => s.id === id), location: report.location };
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
