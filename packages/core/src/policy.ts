/**
 * The backend-neutral hardening policy (DESIGN.md §3). Every field is optional: a field the
 * caller sets is *requested* and, in strict mode, must be enforced or the sandbox does not
 * open; a field left out takes the backend's default (hardened on container backends).
 */
import { z } from 'zod';
import { PolicyNotEnforceableError } from './errors.js';

const hostPort = z
  .string()
  .regex(
    /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/,
    'must be host:port, e.g. 127.0.0.1:8080 or [::1]:443',
  );

export const MountSchema = z.strictObject({
  /** Path on the host (or the backend's notion of the host). */
  source: z.string().min(1),
  /** Absolute path inside the sandbox. */
  target: z.string().startsWith('/', 'must be an absolute path'),
  readOnly: z.boolean().default(false),
});

export const NetworkPolicySchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('none') }),
  z.strictObject({ mode: z.literal('open') }),
  z.strictObject({ mode: z.literal('allowlist'), allow: z.array(hostPort).min(1) }),
]);

/** A host the real value of a secret may go to: `host:port` (plain HTTP), or one the relay would decrypt. */
export const SecretHostSchema = z.union([
  hostPort,
  z.strictObject({
    host: hostPort,
    /**
     * HTTPS: the relay decrypts this host's connections with a certificate from a CA made for
     * this sandbox (which the sandbox is told to trust), swaps the value in, and speaks TLS to
     * the real server. Opt-in per host; backends without it refuse it (PolicyNotEnforceableError).
     */
    terminateTls: z.literal(true),
    /** A PEM file of a CA to trust for the real server, besides the system's roots. */
    upstreamCa: z.string().min(1).optional(),
  }),
]);

export const SecretSchema = z.strictObject({
  /** The sandbox's environment variable that holds the placeholder (never the real value). */
  env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'),
  /** Where the library reads the real value at open: a file, or its own environment. */
  from: z.union([z.strictObject({ file: z.string().min(1) }), z.strictObject({ env: z.string().min(1) })]),
  /** Allowlist entries (`host:port`) the relay sends the real value to; every other host is refused. */
  hosts: z.array(SecretHostSchema).min(1),
  /** Replace the placeholder in the request line (path and query) too, not only in headers. */
  inRequestLine: z.boolean().default(false),
});

export const PolicySchema = z.strictObject({
  /**
   * Sandboxes apart from each other and from the host: their own filesystem view, process
   * namespace and environment (a container, a VM, bubblewrap...).
   */
  isolation: z.boolean().optional(),
  /** Root filesystem read-only; writable only where mounted (workspace, skills, /tmp). */
  readOnlyRoot: z.boolean().optional(),
  /** `/tmp` as a size-limited tmpfs; `false` leaves /tmp as the image has it. */
  tmp: z
    .union([
      z.literal(false),
      z.strictObject({
        sizeMiB: z.number().int().positive().default(64),
        noexec: z.boolean().default(true),
        nosuid: z.boolean().default(true),
      }),
    ])
    .optional(),
  limits: z
    .strictObject({
      pids: z.number().int().positive().optional(),
      memoryMiB: z.number().int().positive().optional(),
      cpus: z.number().positive().optional(),
      /** Size limit of the workspace: writes beyond it fail with ENOSPC (NO_SPACE from writeFile). */
      diskMiB: z.number().int().positive().optional(),
    })
    .optional(),
  dropCapabilities: z.boolean().optional(),
  noNewPrivileges: z.boolean().optional(),
  /** Run commands as a non-root user. */
  nonRootUser: z.boolean().optional(),
  /** Writable (or read-only) directories mounted into the sandbox, e.g. a skills directory. */
  mounts: z.array(MountSchema).optional(),
  /** Credentials: always mounted (or uploaded) read-only. */
  credentials: z.array(MountSchema.omit({ readOnly: true })).optional(),
  network: NetworkPolicySchema.optional(),
  /**
   * Credentials that never enter the sandbox: it sees a placeholder, and the egress relay of a
   * network allowlist puts the real value in HTTP requests to the secret's hosts only.
   */
  secrets: z.array(SecretSchema).optional(),
  /** Labels/tags put on everything the backend creates, for sweeping leaks. */
  labels: z.record(z.string(), z.string()).optional(),
});

export type Policy = z.input<typeof PolicySchema>;
export type ParsedPolicy = z.output<typeof PolicySchema>;
export type NetworkPolicy = z.output<typeof NetworkPolicySchema>;
export type SecretPolicy = z.output<typeof SecretSchema>;

/** The controls reported by `sandbox.enforcement`: one per policy field, and checkpointIntegrity. */
export const POLICY_CONTROLS = [
  'isolation',
  'readOnlyRoot',
  'tmp',
  'limits.pids',
  'limits.memoryMiB',
  'limits.cpus',
  'limits.diskMiB',
  'dropCapabilities',
  'noNewPrivileges',
  'nonRootUser',
  'mounts',
  'credentials',
  'network',
  'secrets',
  'labels',
  /**
   * Not a policy field: whether checkpoints hold against the sandbox's own processes (no
   * process runs while the tree is read or restored, the store is out of their reach).
   */
  'checkpointIntegrity',
] as const;
export type PolicyControl = (typeof POLICY_CONTROLS)[number];

export interface ControlStatus {
  status: 'enforced' | 'not-supported' | 'not-requested';
  /** What the sandbox actually got (read back from the platform where it can be), or why not. */
  detail: string;
}
export type EnforcementReport = Readonly<Record<PolicyControl, ControlStatus>>;

/** The value of each control as the caller set it (undefined when left to the backend default). */
export function requestedControls(policy: ParsedPolicy): Partial<Record<PolicyControl, unknown>> {
  const out: Partial<Record<PolicyControl, unknown>> = {};
  const set = (key: PolicyControl, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  set('isolation', policy.isolation);
  set('readOnlyRoot', policy.readOnlyRoot);
  set('tmp', policy.tmp);
  set('limits.pids', policy.limits?.pids);
  set('limits.memoryMiB', policy.limits?.memoryMiB);
  set('limits.cpus', policy.limits?.cpus);
  set('limits.diskMiB', policy.limits?.diskMiB);
  set('dropCapabilities', policy.dropCapabilities);
  set('noNewPrivileges', policy.noNewPrivileges);
  set('nonRootUser', policy.nonRootUser);
  set('mounts', policy.mounts?.length ? policy.mounts : undefined);
  set('credentials', policy.credentials?.length ? policy.credentials : undefined);
  set('network', policy.network);
  set('secrets', policy.secrets?.length ? policy.secrets : undefined);
  set('labels', policy.labels && Object.keys(policy.labels).length ? policy.labels : undefined);
  return out;
}

/** A value that asks for nothing: `false` for a hardening switch, `open` for the network. */
function asksForNothing(control: PolicyControl, value: unknown): boolean {
  if (value === false) return true;
  if (control === 'network') return (value as NetworkPolicy).mode === 'open';
  return false;
}

/**
 * Strict mode: every control the caller explicitly requested must be enforced. Throws a
 * PolicyNotEnforceableError listing each control that is not, with the backend's reason.
 */
export function assertEnforced(
  policy: ParsedPolicy,
  report: EnforcementReport,
  context: { backend: string; sandboxId?: string },
): void {
  const missing: Record<string, string> = {};
  for (const [control, value] of Object.entries(requestedControls(policy)) as [PolicyControl, unknown][]) {
    if (asksForNothing(control, value)) continue;
    const got = report[control];
    if (got.status !== 'enforced') missing[control] = got.detail;
  }
  if (Object.keys(missing).length > 0) {
    const list = Object.entries(missing)
      .map(([c, why]) => `${c} (${why})`)
      .join('; ');
    throw new PolicyNotEnforceableError(
      `the ${context.backend} backend cannot enforce: ${list}. Use a backend that can, or pass strict: false to open it anyway with the controls reported in sandbox.enforcement.`,
      missing,
      { ...context, operation: 'open' },
    );
  }
}

/** Build a report where every control has the same status, then override some. */
export function enforcementReport(
  base: ControlStatus,
  overrides: Partial<Record<PolicyControl, ControlStatus>> = {},
): EnforcementReport {
  const report = {} as Record<PolicyControl, ControlStatus>;
  for (const control of POLICY_CONTROLS) report[control] = overrides[control] ?? base;
  return report;
}
