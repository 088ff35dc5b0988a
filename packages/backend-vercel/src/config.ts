/** The vercel backend's settings (`spec.config`), validated field by field. */
import { z } from 'zod';

export const VercelConfigSchema = z.strictObject({
  /**
   * Access token. Default: VERCEL_TOKEN; without one, the SDK's own OIDC (VERCEL_OIDC_TOKEN).
   * A token needs `teamId` and `projectId` beside it.
   */
  token: z.string().min(1).optional(),
  /** Default: VERCEL_TEAM_ID (or VERCEL_ORG_ID). */
  teamId: z.string().min(1).optional(),
  /** Default: VERCEL_PROJECT_ID. */
  projectId: z.string().min(1).optional(),
  /**
   * Where the Vercel API is (default `https://vercel.com/api`): the Vercel emulator's URL, for
   * example. The SDK has no base-URL option; its requests are redirected through its `fetch`.
   */
  apiUrl: z.string().url().optional(),
  /** Working directory of every command and of relative paths. Default: the sandbox's own (`/vercel/sandbox`). */
  workdir: z.string().startsWith('/', 'must be an absolute path').optional(),
  /** Extra environment for every command (the caller's `env` on exec overrides it). */
  env: z.record(z.string(), z.string()).default({}),
  /**
   * Vercel stops a session this long after it started: the dead man's switch for a sandbox whose
   * owner crashed. The next call resumes it, files kept (processes are not). Default 30 minutes.
   */
  sandboxTimeoutMs: z
    .number()
    .int()
    .min(60_000, 'must be at least one minute')
    .default(30 * 60_000),
  /** How long Vercel keeps a checkpoint's snapshot (ms; 0: until deleted). Default: Vercel's. */
  snapshotExpirationMs: z.number().int().min(0).optional(),
  /** Leave the sandbox on close, to re-attach later by id (its timeout still stops it). */
  keep: z.boolean().default(false),
});

/** What a user writes as `config` for the vercel backend: every field has a default. */
export type VercelConfig = z.input<typeof VercelConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type VercelResolvedConfig = z.output<typeof VercelConfigSchema>;
