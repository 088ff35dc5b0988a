/** The modal backend's settings (`spec.config`), validated field by field. */
import { z } from 'zod';

const wholeSeconds = (what: string) =>
  z
    .number()
    .int()
    .min(1000, `${what} must be at least one second`)
    .refine((ms) => ms % 1000 === 0, `${what} must be whole seconds (Modal counts in seconds)`);

export const ModalConfigSchema = z.strictObject({
  /** Token id. Default: MODAL_TOKEN_ID, else the active profile of ~/.modal.toml (MODAL_CONFIG_PATH). */
  tokenId: z.string().min(1).optional(),
  /** Token secret. Default: MODAL_TOKEN_SECRET, else the profile. */
  tokenSecret: z.string().min(1).optional(),
  /**
   * The control-plane URL (default MODAL_SERVER_URL, else the profile's `server_url`, else
   * Modal's): the Modal emulator's `http://127.0.0.1:PORT`, for example.
   */
  serverUrl: z.string().url().optional(),
  /** Modal environment. Default: MODAL_ENVIRONMENT, else the profile's, else the account's default. */
  environment: z.string().min(1).optional(),
  /** The Modal app the sandboxes belong to (created when missing). */
  appName: z.string().min(1).default('agentbox'),
  /** Registry image the sandbox runs (it needs /bin/sh, setsid, mkfifo and cat). */
  image: z.string().min(1).default('debian:bookworm-slim'),
  /** Working directory of every command and of relative paths. Default `/root`. */
  workdir: z.string().startsWith('/', 'must be an absolute path').default('/root'),
  /** Extra environment for every command (the caller's `env` on exec overrides it). */
  env: z.record(z.string(), z.string()).default({}),
  /**
   * Modal ends the sandbox this long after it started, whatever happens: the dead man's switch
   * for a sandbox whose owner crashed. Default 30 minutes.
   */
  sandboxTimeoutMs: wholeSeconds('sandboxTimeoutMs').default(30 * 60_000),
  /** Modal ends the sandbox after this long with no command running. Default 10 minutes. */
  idleTimeoutMs: wholeSeconds('idleTimeoutMs').default(10 * 60_000),
  /**
   * Run commands down shells kept open in the sandbox (core's SessionPool, one long-lived exec
   * each) when one is idle, instead of one Modal exec per command. Off by default: a session's
   * exec never ends, so Modal never sees the sandbox idle and `idleTimeoutMs` cannot end it.
   */
  sessions: z.boolean().default(false),
  /** Leave the sandbox on close, to re-attach later by id (its timeouts still end it). */
  keep: z.boolean().default(false),
});

/** What a user writes as `config` for the modal backend: every field has a default. */
export type ModalConfig = z.input<typeof ModalConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type ModalResolvedConfig = z.output<typeof ModalConfigSchema>;
