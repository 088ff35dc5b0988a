/**
 * Opening the sandbox a command addresses. A sandbox used across CLI invocations is opened with
 * the backend's `keep` switch, so closing this process's handle leaves it in place for the next;
 * `open` records its backend and config (kept.ts), so later commands need only `--id`.
 */
import {
  InvalidArgumentError,
  NotFoundError,
  openSandbox,
  type Policy,
  type SandboxBackend,
  SandboxIdSchema,
  UnsupportedError,
} from '@agentbox/core';
import { hasKeepOption, type LoadedBackend, loadBackend, readConfig, readPolicy } from './backends.js';
import {
  readRecord,
  recalled,
  recordsDir,
  rememberConfig,
  type SandboxRecord,
  withoutSecrets,
  writeRecord,
} from './kept.js';
import { progressPrinter } from './output.js';

export interface SandboxFlags {
  /** Undefined: the backend `open` recorded for `--id`, else local. */
  backend?: string | undefined;
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
  /** The environment (AGENTBOX_BACKENDS, XDG_STATE_HOME, HOME); default process.env. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

const DEFAULT_BACKEND = 'local';

/** The backend, config and policy a command means: its flags, completed by the record of `--id`. */
interface Resolved {
  kind: string;
  config: Record<string, unknown>;
  policy: Policy | undefined;
  /** The record these came from (in part), if any. */
  record: SandboxRecord | undefined;
}

async function resolveFlags(flags: SandboxFlags, env: Readonly<Record<string, string | undefined>>) {
  if (flags.id !== undefined) checkId(flags.id);
  const found = flags.id === undefined ? undefined : await readRecord(env, flags.id);
  const kind = flags.backend ?? found?.backend ?? DEFAULT_BACKEND;
  // A record of another backend says nothing about this one.
  const record = found?.backend === kind ? found : undefined;
  const configGiven = flags.config !== undefined || flags['config-file'] !== undefined;
  let config: Record<string, unknown>;
  if (configGiven || record?.config === undefined) config = await readConfig(flags);
  else if ('file' in record.config) config = await readConfig({ 'config-file': record.config.file });
  else config = { ...recalled(record, 'config', record.config.json) };
  const policy =
    flags.policy !== undefined
      ? readPolicy(flags.policy)
      : record?.policy && (recalled(record, 'policy', record.policy) as Policy);
  return { kind, config, policy, record } satisfies Resolved;
}

export async function openFromFlags(flags: SandboxFlags, request: OpenRequest): Promise<SandboxBackend> {
  const env = request.env ?? process.env;
  const { kind, config, policy, record } = await resolveFlags(flags, env);
  const backend = await loadBackend(kind, env);
  if (request.keep !== undefined) {
    if (hasKeepOption(backend.definition)) config.keep = request.keep;
    else if (request.keep)
      throw new UnsupportedError(
        `the ${backend.kind} backend has no keep option, so its sandboxes cannot outlive one command`,
        { backend: backend.kind, operation: 'open' },
      );
  }
  if (flags.id !== undefined) {
    const found = request.mustExist
      ? await findSandbox(backend, config, flags.id, request.signal)
      : undefined;
    if (found && !found.exists) {
      // Without a record or --backend, "not on local" may only mean "on another backend".
      const guessed =
        flags.backend === undefined && record === undefined
          ? ` (agentbox has no record of a sandbox "${flags.id}" in ${recordsDir(env)}, so it looked on ${kind}: ` +
            'if the sandbox is on another backend, give --backend KIND and its --config)'
          : '';
      throw new NotFoundError(
        `no ${backend.kind} sandbox "${flags.id}" ${found.location}${guessed}; ` +
          `create one with \`agentbox open${backend.kind === 'local' ? '' : ` --backend ${backend.kind}`} --id ${flags.id}\``,
        { backend: backend.kind, operation: 'open', sandboxId: flags.id },
      );
    }
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

/**
 * Remember kept sandbox `sandbox` for later commands: its backend, and the config and policy as
 * the flags gave them (a record that already says the same is left as it is).
 */
export async function rememberSandbox(
  flags: SandboxFlags,
  sandbox: SandboxBackend,
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  const given =
    flags.config !== undefined || flags['config-file'] !== undefined || flags.policy !== undefined;
  const existing = await readRecord(env, sandbox.id);
  if (!given && existing?.backend === sandbox.kind) return;
  const config = rememberConfig(flags);
  const policy = flags.policy === undefined ? undefined : withoutSecrets(JSON.parse(flags.policy));
  await writeRecord(env, {
    version: 1,
    id: sandbox.id,
    backend: sandbox.kind,
    ...(config ? { config } : {}),
    ...(policy ? { policy } : {}),
    savedAt: new Date().toISOString(),
  });
}
