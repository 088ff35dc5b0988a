/**
 * `openSandbox(spec)`: validate the spec, find the backend by kind, open it. There is no
 * fallback: an unknown kind, a bad spec or a backend that cannot start is an error.
 */
import { z } from 'zod';
import { AbortedError, InvalidArgumentError, toAgentboxError } from './errors.js';
import { abortSignalSchema } from './options.js';
import {
  assertEnforced,
  type ControlStatus,
  type ParsedPolicy,
  type PolicyControl,
  PolicySchema,
} from './policy.js';
import { didYouMean } from './suggest.js';
import type { SandboxBackend } from './types.js';
import { parseArgument } from './validate.js';

/** A sandbox id: safe in labels, container names and paths. */
export const SandboxIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be 1-63 of a-z 0-9 _ . - starting with a letter or digit');

export const SandboxSpecSchema = z.strictObject({
  /** Backend kind, e.g. `local`, `docker`, `ssh`. */
  backend: z.string().min(1),
  /** Re-attach to this sandbox if it exists (where the backend can), else create it with this id. */
  id: SandboxIdSchema.optional(),
  /** The backend's own settings, validated by its schema. */
  config: z.unknown().optional(),
  policy: PolicySchema.default({}),
  /** Refuse to open unless every requested policy control is enforced (default true). */
  strict: z.boolean().default(true),
});

/**
 * The config each backend kind takes, as the user writes it (`spec.config`). Empty here: each
 * backend package adds its kind by module augmentation, so importing the package is what types
 * its config:
 *
 *     declare module '@agentbox/core' {
 *       interface BackendConfigs { docker: DockerConfig }
 *     }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by module augmentation in the backend packages.
export interface BackendConfigs {}

/** A kind whose package is imported (and so typed); any other string is still accepted at run time. */
export type KnownBackendKind = keyof BackendConfigs & string;

/** The config of `Kind`: its type when a backend package declares it, else `unknown` (checked at run time). */
export type BackendConfigFor<Kind extends string> = Kind extends KnownBackendKind
  ? BackendConfigs[Kind]
  : unknown;

/**
 * What `openSandbox` takes. `config` is typed by the kind: `backend: 'docker'` makes `config` a
 * DockerConfig (completion, and a misspelt key is a compile error) once `@agentbox/backend-docker`
 * is imported; a kind no package declares (a backend registered at run time) takes any config.
 */
export type SandboxSpec<Kind extends string = string> = Omit<
  z.input<typeof SandboxSpecSchema>,
  'backend' | 'config'
> & {
  /** Backend kind, e.g. `local`, `docker`, `ssh`. */
  backend: Kind;
  /** The backend's own settings, validated by its schema when the sandbox opens. */
  config?: BackendConfigFor<Kind>;
};

export interface OpenContext<Config> {
  id: string;
  /** True when the caller passed the id (re-attach if the sandbox exists). */
  idGiven: boolean;
  config: Config;
  policy: ParsedPolicy;
  strict: boolean;
  signal: AbortSignal | undefined;
  /** Report the slow steps of an open (an image pull) as they happen; never throws. */
  onProgress?: ((event: OpenProgress) => void) | undefined;
}

/** A step of a slow open, for a progress display: an image pull, say. */
export interface OpenProgress {
  backend: string;
  /** What is under way, e.g. `pull`. */
  stage: string;
  /** One line for a person: `pulling busybox:1.37: 1.2 of 2.1 MiB`. */
  message: string;
  /** Units done and expected (bytes for a pull), when known. */
  current?: number;
  total?: number;
}

/** What `sweep` is asked to find (and, unless a dry run, remove). */
export interface SweepOptions<Config = unknown> {
  /** The backend's config, parsed by its schema: where its sandboxes live, how to reach them. */
  config: Config;
  /** List only; remove nothing. */
  dryRun: boolean;
  /** Only sandboxes created at least this long ago (one whose age cannot be read is kept). */
  olderThanMs?: number | undefined;
  /** Only these sandboxes. */
  ids?: readonly string[] | undefined;
  /** Only sandboxes carrying these labels (the policy labels they were opened with). */
  labels?: Readonly<Record<string, string>> | undefined;
  /**
   * Also sandboxes that another user (or another install) of agentbox created, where the backend
   * can tell them apart (an owner label, a directory's owner). Default false: a sweep touches
   * only what this user's agentbox created.
   */
  all?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** One leaked sandbox: what was found of it, and whether it is gone. */
export interface SweptSandbox {
  /** Its id ('' for resources that carry the backend's labels but name no sandbox). */
  id: string;
  /** ISO 8601, when the backend recorded it. */
  createdAt: string | undefined;
  /** What it consists of, e.g. `{ type: 'directory', name: '/tmp/boxes/abc' }`, containers, processes. */
  resources: { type: string; name: string }[];
  /** True once every resource is removed; false on a dry run or when removal failed (see `error`). */
  removed: boolean;
  error?: string;
}

export interface SweepReport {
  /** Where the sweep looked, as a phrase: `under /tmp/agentbox-local`, `on the Docker daemon at ...`. */
  location: string;
  sandboxes: SweptSandbox[];
}

export interface DoctorCheck {
  /** What was checked, e.g. `daemon`, `sh`, `root directory`. */
  name: string;
  ok: boolean;
  /** What was found, or what to do about it. */
  detail: string;
}

export interface DoctorReport {
  /** Every check passed: sandboxes can be opened here with this config. */
  ok: boolean;
  checks: DoctorCheck[];
  /** Which policy controls this backend can enforce here (`enforced`) and which not (`not-supported`), and why. */
  controls: Partial<Record<PolicyControl, ControlStatus>>;
}

export interface BackendDefinition<Config = unknown> {
  kind: string;
  /** zod schema for `spec.config`; its errors are reported field by field. */
  configSchema: z.ZodType<Config>;
  /** Open (or re-attach to) a sandbox. Must clean up after itself if aborted or failing halfway. */
  open(ctx: OpenContext<Config>): Promise<SandboxBackend>;
  /** Find the sandboxes this backend left behind (crashes, kept and forgotten) and remove them unless a dry run. */
  sweep?(options: SweepOptions<Config>): Promise<SweepReport>;
  /** What the backend needs, whether it is installed and reachable here, and which policy controls it can enforce. */
  doctor?(options: { config: Config; signal?: AbortSignal | undefined }): Promise<DoctorReport>;
}

/**
 * A backend's definition, with typed errors guaranteed: whatever its sweep or doctor throws
 * reaches the caller as an AgentboxError naming the backend and the operation (open is wrapped
 * by openSandbox).
 */
export function defineBackend<Schema extends z.ZodType>(
  def: BackendDefinition<z.output<Schema>> & { configSchema: Schema },
): BackendDefinition<z.output<Schema>> {
  type Config = z.output<Schema>;
  const typed =
    <A, R>(operation: string, fn: (arg: A) => Promise<R>) =>
    async (arg: A): Promise<R> => {
      try {
        return await fn.call(def, arg);
      } catch (error) {
        throw toAgentboxError(error, { backend: def.kind, operation });
      }
    };
  const { sweep, doctor } = def;
  return {
    ...def,
    ...(sweep ? { sweep: typed<SweepOptions<Config>, SweepReport>('sweep', sweep) } : {}),
    ...(doctor ? { doctor: typed<Parameters<typeof doctor>[0], DoctorReport>('doctor', doctor) } : {}),
  };
}

/** A set of backends by kind. The default one lives on globalThis so that two copies of core share it. */
export class BackendRegistry {
  readonly #backends = new Map<string, BackendDefinition<never>>();

  register<Config>(def: BackendDefinition<Config>): void {
    this.#backends.set(def.kind, def as unknown as BackendDefinition<never>);
  }

  get kinds(): string[] {
    return [...this.#backends.keys()].sort();
  }

  get(kind: string): BackendDefinition<unknown> | undefined {
    return this.#backends.get(kind) as BackendDefinition<unknown> | undefined;
  }
}

const REGISTRY_KEY = Symbol.for('agentbox.registry');
const holder = globalThis as { [REGISTRY_KEY]?: BackendRegistry };
holder[REGISTRY_KEY] ??= new BackendRegistry();
export const defaultRegistry: BackendRegistry = holder[REGISTRY_KEY];

/** Make a backend available to `openSandbox` by its kind. Backend packages call this on import. */
export function registerBackend<Config>(def: BackendDefinition<Config>): void {
  defaultRegistry.register(def);
}

export { formatZodIssues } from './validate.js';

/** A backend's config checked by its schema (defaults filled in), or INVALID_ARGUMENT naming each bad field. */
export function parseBackendConfig<Config>(
  kind: string,
  schema: z.ZodType<Config>,
  config: unknown,
  operation: string,
): Config {
  return parseArgument(schema, config ?? {}, {
    what: `${kind} config`,
    prefix: 'config',
    context: { backend: kind, operation },
  });
}

export function newSandboxId(): string {
  return `abx-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

export interface OpenOptions {
  signal?: AbortSignal;
  /** Called with the slow steps of the open (an image pull); a throwing callback is ignored. */
  onProgress?: (event: OpenProgress) => void;
  registry?: BackendRegistry;
}

const OpenOptionsSchema = z.strictObject({
  signal: abortSignalSchema.optional(),
  // By shape: a registry made by another copy of core is still a registry.
  registry: z
    .custom<BackendRegistry>(
      (value) => typeof (value as BackendRegistry | null)?.get === 'function',
      'must be a BackendRegistry',
    )
    .optional(),
  onProgress: z
    .custom<(event: OpenProgress) => void>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});

// `string & {}` keeps the known kinds as completions without refusing other strings.
export async function openSandbox<Kind extends KnownBackendKind | (string & {})>(
  spec: SandboxSpec<Kind>,
  options: OpenOptions = {},
): Promise<SandboxBackend> {
  const {
    signal,
    registry = defaultRegistry,
    onProgress,
  } = parseArgument(OpenOptionsSchema, options, {
    what: 'open options',
    context: { operation: 'open' },
  });
  const backendGiven = (spec as { backend?: unknown } | null)?.backend;
  const {
    backend: kind,
    id,
    config,
    policy,
    strict,
  } = parseArgument(SandboxSpecSchema, spec, {
    what: 'sandbox spec',
    context: { backend: typeof backendGiven === 'string' ? backendGiven : undefined, operation: 'open' },
  });
  const def = registry.get(kind);
  if (!def) {
    const known = registry.kinds;
    throw new InvalidArgumentError(
      `unknown backend "${kind}"${didYouMean(kind, known)}; known: ${known.length ? known.join(', ') : '(none registered: import a backend package such as @agentbox/backend-local)'}`,
      { operation: 'open', issues: [`backend: unknown kind "${kind}"${didYouMean(kind, known)}`] },
    );
  }
  const cfg = parseBackendConfig(kind, def.configSchema, config, 'open');
  if (signal?.aborted) throw new AbortedError('aborted before open', { backend: kind, operation: 'open' });
  let sandbox: SandboxBackend;
  try {
    sandbox = await def.open({
      id: id ?? newSandboxId(),
      idGiven: id !== undefined,
      config: cfg,
      policy,
      strict,
      signal,
      onProgress,
    });
  } catch (error) {
    throw toAgentboxError(error, { backend: kind, operation: 'open', sandboxId: id });
  }
  try {
    if (signal?.aborted) throw new AbortedError('aborted during open', { backend: kind, operation: 'open' });
    if (strict) assertEnforced(policy, sandbox.enforcement, { backend: kind, sandboxId: sandbox.id });
  } catch (error) {
    await sandbox.close().catch(() => {});
    throw error;
  }
  // Re-attached: a rollback a crash cut short is finished now, or the handle says it needs one.
  const resume = (sandbox as { resumeInterruptedRollback?: (signal?: AbortSignal) => Promise<unknown> })
    .resumeInterruptedRollback;
  if (id !== undefined && typeof resume === 'function') await resume.call(sandbox, signal);
  return sandbox;
}
