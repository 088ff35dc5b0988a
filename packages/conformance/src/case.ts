/** How a conformance case is written: a stable id, a title that states the promise, and a body. */
import { type CapabilityName, InvalidArgumentError, type SandboxBackend } from '@agentbox/core';
import type { ConformanceOptions } from './options.js';

export interface CaseContext {
  /** The sandbox the case runs in: the suite's shared one, or its group's own. */
  readonly sandbox: SandboxBackend;
  /** Absolute path of a directory that belongs to this case alone (created empty). */
  readonly dir: string;
  /** The same directory relative to `sandbox.workdir`. */
  readonly rel: string;
  readonly options: ConformanceOptions;
  /** A duration scaled by `options.timeScale`. */
  ms(base: number): number;
  /** Open another sandbox; it is closed when the case ends. */
  open(opts?: { signal?: AbortSignal }): Promise<SandboxBackend>;
  /** Stop here and report the case as skipped, with the reason. */
  skip(reason: string): never;
}

export interface ConformanceCase {
  /** Stable id, `group.name`; backends skip cases by it. */
  id: string;
  /** The promise the case checks, as a sentence. */
  title: string;
  /** Vitest timeout before `timeScale` (default 30 s). */
  timeoutMs?: number;
  /** Capabilities the case exercises: a backend without one skips the case, giving its own reason. */
  needs?: readonly CapabilityName[];
  run(ctx: CaseContext): Promise<void>;
}

export interface CaseGroup {
  name: string;
  /** `own`: the group's cases share a sandbox of their own, opened on first use (default: the suite's). */
  sandbox?: 'shared' | 'own';
  /** A reason to skip every case of the group for this backend, judged on the shared sandbox. */
  unsupported?: (sandbox: SandboxBackend) => string | undefined;
  cases: ConformanceCase[];
}

/** Identity helper that keeps case files typed without repeating the interface. */
export function defineGroup(group: CaseGroup): CaseGroup {
  for (const c of group.cases) {
    if (!c.id.startsWith(`${group.name}.`))
      throw new InvalidArgumentError(`case id ${c.id} must start with "${group.name}."`, {
        issues: [`cases.${c.id}: must start with "${group.name}."`],
      });
  }
  return group;
}
