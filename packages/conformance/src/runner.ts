/**
 * `runConformance`: turns the case groups into vitest suites. One sandbox is shared by most
 * cases (opened in beforeAll, closed in afterAll); each case works in its own directory.
 */
import { posix } from 'node:path';
import {
  AgentboxError,
  type Capabilities,
  type CapabilityName,
  InvalidArgumentError,
  type SandboxBackend,
  SandboxUnavailableError,
} from '@agentbox/core';
import { didYouMean, invalidArgument } from '@agentbox/core/backend';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { CaseContext, CaseGroup, ConformanceCase } from './case.js';
import { checkpointCases } from './cases/checkpoints.js';
import { errorCases } from './cases/errors.js';
import { execCases } from './cases/exec.js';
import { fileCases } from './cases/files.js';
import { lifecycleCases } from './cases/lifecycle.js';
import { outputCases } from './cases/output.js';
import { poolCases } from './cases/pool.js';
import { tamperCases } from './cases/tamper.js';
import { timeoutCases } from './cases/timeouts.js';
import type { ConformanceOptions } from './options.js';

export const groups: readonly CaseGroup[] = [
  execCases,
  timeoutCases,
  outputCases,
  fileCases,
  checkpointCases,
  lifecycleCases,
  errorCases,
  tamperCases,
  poolCases,
];

/** Every case id, in the order the suite runs them. */
export const caseIds: readonly string[] = groups.flatMap((g) => g.cases.map((c) => c.id));

const DEFAULT_CASE_TIMEOUT_MS = 30_000;
const OPEN_TIMEOUT_MS = 120_000;

/**
 * Why a case that needs `needs` cannot run on a backend with `capabilities`: the first missing
 * capability and the backend's own reason for it; undefined when everything needed is there.
 */
export function missingCapability(
  needs: readonly CapabilityName[] | undefined,
  capabilities: Capabilities,
): string | undefined {
  for (const name of needs ?? []) {
    if (capabilities[name] === true) continue;
    const reason = capabilities.unsupported?.[name]?.trim() || 'the backend gives no reason';
    return `needs capability ${name}, which this backend lacks: ${reason}`;
  }
  return undefined;
}

/** Check the options before any test is declared, so that a mistake fails the file loudly. */
export function validateOptions(options: ConformanceOptions): void {
  const where = { operation: 'runConformance' };
  if (typeof options?.name !== 'string' || options.name === '')
    throw invalidArgument('name', 'is required', where);
  if (typeof options.open !== 'function') throw invalidArgument('open', 'must be a function', where);
  const scale = options.timeScale ?? 1;
  if (!Number.isFinite(scale) || scale <= 0)
    throw invalidArgument('timeScale', 'must be a positive number', where);
  const known = new Set(caseIds);
  const unknown = Object.keys(options.skip ?? {}).filter((id) => !known.has(id));
  if (unknown.length > 0) {
    const named = unknown.map((id) => `${id}${didYouMean(id, caseIds)}`);
    throw new InvalidArgumentError(
      `unknown case id(s) in skip: ${named.join(', ')}. Known ids: ${caseIds.join(', ')}`,
      { ...where, issues: unknown.map((id) => `skip.${id}: unknown case id${didYouMean(id, caseIds)}`) },
    );
  }
  for (const [id, reason] of Object.entries(options.skip ?? {})) {
    if (typeof reason !== 'string' || reason.trim() === '')
      throw invalidArgument(`skip.${id}`, 'needs a reason', where);
  }
}

/** Declare the whole conformance suite for one backend in the calling vitest file. */
export function runConformance(options: ConformanceOptions): void {
  validateOptions(options);
  const scale = options.timeScale ?? 1;
  const ms = (base: number) => Math.round(base * scale);

  describe(`agentbox conformance: ${options.name}`, () => {
    let shared: SandboxBackend | undefined;
    // Reporters that list only failures still show this, so a skip is never silent.
    const skipped = new Map<string, string>();
    beforeAll(async () => {
      shared = await options.open({});
    }, ms(OPEN_TIMEOUT_MS));
    afterAll(async () => {
      if (skipped.size > 0) {
        const lines = [...skipped].map(([id, why]) => `  ${id}: ${why}`);
        console.info(
          `agentbox conformance (${options.name}): ${skipped.size} case(s) skipped\n${lines.join('\n')}`,
        );
      }
      await shared?.close();
    }, ms(OPEN_TIMEOUT_MS));

    for (const group of groups) {
      describe(group.name, () => {
        let own: Promise<SandboxBackend> | undefined;
        afterAll(async () => {
          const sandbox = await own?.catch(() => undefined);
          await sandbox?.close();
        }, ms(OPEN_TIMEOUT_MS));

        for (const testCase of group.cases) {
          const title = `${testCase.id}: ${testCase.title}`;
          const reason = options.skip?.[testCase.id];
          if (reason !== undefined) {
            skipped.set(testCase.id, reason);
            it.skip(`${title} — skipped: ${reason}`, () => {});
            continue;
          }
          it(
            title,
            async (t) => {
              const skip = (why: string): never => {
                skipped.set(testCase.id, why);
                return t.skip(why);
              };
              if (!shared)
                throw new SandboxUnavailableError(
                  'the shared sandbox did not open (see the beforeAll error)',
                );
              const unsupported =
                group.unsupported?.(shared) ?? missingCapability(testCase.needs, shared.capabilities);
              if (unsupported) skip(unsupported);
              let sandbox = shared;
              if (group.sandbox === 'own') {
                own ??= options.open({});
                sandbox = await own;
              }
              await runCase(testCase, sandbox, options, ms, skip);
            },
            ms(testCase.timeoutMs ?? DEFAULT_CASE_TIMEOUT_MS),
          );
        }
      });
    }
  });
}

async function runCase(
  testCase: ConformanceCase,
  sandbox: SandboxBackend,
  options: ConformanceOptions,
  ms: (base: number) => number,
  skip: (reason: string) => never,
): Promise<void> {
  const rel = posix.join('conformance', testCase.id);
  const dir = posix.join(sandbox.workdir, rel);
  const prepared = await sandbox.exec(['sh', '-c', 'rm -rf "$1" && mkdir -p "$1"', 'sh', dir]);
  if (prepared.exitCode !== 0)
    throw new AgentboxError(`could not create the case directory ${dir}: ${prepared.stderr}`, {
      backend: sandbox.kind,
      operation: 'exec',
      subject: dir,
    });
  const opened: SandboxBackend[] = [];
  const ctx: CaseContext = {
    sandbox,
    dir,
    rel,
    options,
    ms,
    async open(opts = {}) {
      const extra = await options.open(opts);
      opened.push(extra);
      return extra;
    },
    skip,
  };
  let passed = false;
  try {
    await testCase.run(ctx);
    passed = true;
  } finally {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    // Keep a failed case's directory for inspection; drop a passed one so big files do not pile up.
    if (passed) await sandbox.exec(['rm', '-rf', dir]).catch(() => {});
  }
}
