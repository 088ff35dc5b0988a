/** What a backend's test file passes to `runConformance`. */
import type { SandboxBackend, SandboxSpec } from '@agentbox/core';

export interface ConformanceOpenOptions {
  signal?: AbortSignal;
}

export interface ConformanceOptions {
  /** Shown in the suite title, e.g. `local` or `docker (hardened)`. */
  name: string;
  /**
   * Open a new sandbox of the backend under test. Called once for the sandbox most cases share,
   * and again by cases that need their own; the suite closes every sandbox it opens.
   */
  open: (opts: ConformanceOpenOptions) => Promise<SandboxBackend>;
  /** Cases not to run, by id, each with the reason printed in the test output. An unknown id is an error. */
  skip?: Readonly<Record<string, string>>;
  /** Processes of one sandbox are invisible to another. Default: `capabilities.isolation !== 'none'`. */
  isolatesProcesses?: boolean;
  /** One sandbox cannot read another's files by absolute path. Default: `capabilities.isolation !== 'none'`. */
  isolatesFilesystem?: boolean;
  /**
   * Everything of this backend that exists right now (sandbox directories, containers, remote
   * sandboxes), one string each. The suite compares the list before and after aborted opens;
   * without it, those cases are skipped.
   */
  leftovers?: () => Promise<string[]>;
  /**
   * When a process that left the command's process group and let go of its output dies:
   * `timeout` (the command's timeout or kill reaches it) or `close` (only closing the sandbox
   * does). Default `timeout`.
   */
  escapedProcessesDie?: 'timeout' | 'close';
  /**
   * The spec `open` opens (backend, config, policy), for the warm-pool cases: `createPool` over
   * it, and the backend's `sweep` finding a pool's sandboxes by their label. Without it, those
   * cases are skipped.
   */
  pool?: SandboxSpec;
  /** Multiply every deadline and wait of the suite (default 1), for backends with slow round trips. */
  timeScale?: number;
}
