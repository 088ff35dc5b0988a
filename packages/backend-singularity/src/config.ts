/** The singularity backend's config. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

export const SingularityConfigSchema = z.strictObject({
  /** The image every sandbox starts from: a SIF file or a sandbox directory. */
  image: z.string().min(1),
  /** The CLI (a path, or a name looked up on PATH). Default: `apptainer`, else `singularity`, on PATH. */
  binary: z.string().min(1).optional(),
  /** Directory under which each sandbox gets `<id>/workspace`, `<id>/overlay` and `<id>/checkpoints`. */
  root: z.string().min(1).default(join(tmpdir(), 'agentbox-singularity')),
  /** Where the workspace appears inside the instance (the working directory of every command). */
  workspacePath: z
    .string()
    .regex(/^\/[^:,]*$/, 'must be an absolute path without ":" or ","')
    .default('/workspace'),
  /**
   * How the root filesystem is writable: `overlay` (a persistent overlay directory, kept in
   * checkpoints) or `tmpfs` (`--writable-tmpfs`: changes outside the workspace last until the
   * instance stops and are not checkpointed). A policy with `readOnlyRoot: true` gets neither.
   */
  writable: z.enum(['overlay', 'tmpfs']).default('overlay'),
  /** Keep the sandbox's directory (and its instance) on close, to re-attach by id. */
  keep: z.boolean().default(false),
  /** Small commands run down shells kept open in the instance (core's SessionPool); `false`: one CLI exec each. */
  fastPath: z.boolean().default(true),
});
export type SingularityConfig = z.input<typeof SingularityConfigSchema>;
export type SingularityResolvedConfig = z.output<typeof SingularityConfigSchema>;

/** Instance names carry this prefix, so `instance list` tells this backend's instances apart. */
export const INSTANCE_PREFIX = 'agentbox-';
export const instanceName = (id: string) => `${INSTANCE_PREFIX}${id}`;
