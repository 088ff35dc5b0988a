/** The SSH backend's settings (`spec.config`), validated with zod. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { EgressDenial } from '@agentbox/core/backend';
import { z } from 'zod';

const PrivateKeyAuthSchema = z
  .strictObject({
    type: z.literal('privateKey'),
    /** Path of the private key file on this machine. */
    path: z.string().min(1).optional(),
    /** The private key itself (OpenSSH or PEM text). */
    key: z.string().min(1).optional(),
    passphrase: z.string().optional(),
  })
  .refine((auth) => (auth.path === undefined) !== (auth.key === undefined), {
    message: 'give exactly one of path or key',
  });

const AgentAuthSchema = z.strictObject({
  type: z.literal('agent'),
  /** The ssh-agent socket; defaults to SSH_AUTH_SOCK as it was when the config was parsed. */
  socket: z
    .string()
    .min(1)
    .default(() => process.env.SSH_AUTH_SOCK ?? ''),
});

const PasswordAuthSchema = z.strictObject({
  type: z.literal('password'),
  password: z.string(),
});

export const AuthSchema = z.discriminatedUnion('type', [
  PrivateKeyAuthSchema,
  AgentAuthSchema,
  PasswordAuthSchema,
]);

const fingerprint = z
  .string()
  .regex(
    /^SHA256:[A-Za-z0-9+/]{43}=?$/,
    'must be a SHA-256 fingerprint as ssh-keygen -lf prints it: SHA256:<43 base64 characters>',
  );

/** How to reach and trust one SSH server (the target, or a jump host in front of it). */
export const EndpointSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  /** One method, or several tried in order. */
  auth: z.union([AuthSchema, z.array(AuthSchema).min(1)]),
  /** known_hosts file on this machine used to verify the host key (default ~/.ssh/known_hosts). */
  knownHostsFile: z
    .string()
    .min(1)
    .default(() => join(homedir(), '.ssh', 'known_hosts')),
  /** Pin the host key instead: only a key with this fingerprint (or one of these) is accepted. */
  hostKeyFingerprint: z.union([fingerprint, z.array(fingerprint).min(1)]).optional(),
  /**
   * `strict` (default): a host key that is not in known_hosts is refused. `accept-new`: an unknown
   * host's key is accepted and appended to known_hosts. A changed key is refused either way.
   */
  hostKeyPolicy: z.enum(['strict', 'accept-new']).default('strict'),
  connectTimeoutMs: z.number().int().positive().default(15_000),
  /** Probe an idle connection this often (0 disables); a dead one is noticed after keepaliveCountMax misses. */
  keepaliveIntervalMs: z.number().int().nonnegative().default(10_000),
  keepaliveCountMax: z.number().int().positive().default(3),
});

export const SshConfigSchema = EndpointSchema.extend({
  /** Reach the target through this host (an SSH `direct-tcpip` channel, like `ssh -J`). */
  jump: EndpointSchema.optional(),
  /** Remote directory holding one `<id>/` per sandbox; `~` is the login user's home. */
  root: z.string().min(1).default('~/.agentbox/sandboxes'),
  /** Keep the sandbox's directory (workspace and checkpoints) on close, to re-attach later by id. */
  keep: z.boolean().default(false),
  /**
   * Commands running at once over the one connection. sshd allows 10 sessions per connection by
   * default (MaxSessions); one is kept for file transfer and one for signals.
   */
  maxConcurrentCommands: z.number().int().min(1).max(1000).default(8),
  /**
   * Run small commands down shells kept open on the host (core's SessionPool) instead of one
   * new exec channel each. The sessions' channels count against `maxConcurrentCommands`: at
   * most `maxConcurrentCommands - 2` sessions (up to 8) plus one control shell, so at least one
   * channel is left for the plain path. `false` sends every command down its own exec channel.
   */
  fastPath: z.boolean().default(true),
  /**
   * Keep sandboxes of one login user apart. `auto` (default): each sandbox's commands run in a
   * bubblewrap jail on the host when it has bubblewrap (with nsenter and setpriv), and the
   * enforcement report says isolation is not enforced when it has not. `bwrap`: the jail or
   * the open fails. `none`: commands run directly as the login user, who sees every sandbox.
   */
  isolation: z.enum(['auto', 'bwrap', 'none']).default('auto'),
  /**
   * With a network allowlist: the file on this machine each denied egress attempt is appended
   * to, one JSON line each (time, sandboxId, protocol, destination). Default
   * `~/.agentbox/egress-denied.log`.
   */
  egressLog: z.string().min(1).optional(),
  /** Called with each denied egress attempt too (the sandbox's `egressDenials` keeps the latest). */
  onEgressDenied: z.custom<(denial: EgressDenial) => void>((v) => typeof v === 'function').optional(),
});

/** What a user writes as `config` for the ssh backend: `host`, `user` and `auth` are required. */
export type SshConfig = z.input<typeof SshConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type SshResolvedConfig = z.output<typeof SshConfigSchema>;
export type SshEndpoint = z.output<typeof EndpointSchema>;
export type SshAuth = z.output<typeof AuthSchema>;
