/** The daytona backend's settings (`spec.config`), validated field by field. */
import { z } from 'zod';

const minutes = z.number().int();

export const DaytonaConfigSchema = z.strictObject({
  /** API endpoint. Default: DAYTONA_API_URL (process environment), else the SDK's public endpoint. */
  apiUrl: z.string().url().optional(),
  /** API key (Bearer). Default: DAYTONA_API_KEY. */
  apiKey: z.string().min(1).optional(),
  /** JWT instead of an API key, with `organizationId`. Default: DAYTONA_JWT_TOKEN. */
  jwtToken: z.string().min(1).optional(),
  /** Default: DAYTONA_ORGANIZATION_ID. */
  organizationId: z.string().min(1).optional(),
  /** Region. Default: DAYTONA_TARGET, else the organisation's default. */
  target: z.string().min(1).optional(),
  /** Snapshot (or image name) new sandboxes start from. Default: Daytona's default snapshot. */
  snapshot: z.string().min(1).optional(),
  /** Working directory of every command and of relative paths. Default: the sandbox's own work dir. */
  workdir: z.string().startsWith('/', 'must be an absolute path').optional(),
  /** Extra environment for every command (the caller's `env` on exec overrides it). */
  env: z.record(z.string(), z.string()).default({}),
  /**
   * Daytona stops a sandbox after this many minutes without activity: the dead man's switch
   * for a sandbox whose owner crashed. 0 (never) is refused; raise it for long silent commands.
   */
  autoStopMinutes: minutes
    .min(1, 'must be at least 1: a sandbox that never stops bills forever after a crash')
    .default(15),
  /** Minutes after stopping before Daytona archives it. */
  autoArchiveMinutes: minutes.min(1).default(60),
  /** Minutes after stopping before Daytona deletes it: 0 deletes it as soon as it stops; -1 keeps it. */
  autoDeleteMinutes: minutes.min(-1).default(0),
  /** Use the SDK's polling instead of its event socket (the emulator needs this). */
  polling: z.boolean().default(false),
  /** How long one API request may take (ms). */
  requestTimeoutMs: z.number().int().positive().optional(),
  /** Leave the sandbox running on close, to re-attach later by id (its auto-stop still applies). */
  keep: z.boolean().default(false),
});

/** What a user writes as `config` for the daytona backend: every field has a default. */
export type DaytonaConfig = z.input<typeof DaytonaConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type DaytonaResolvedConfig = z.output<typeof DaytonaConfigSchema>;
