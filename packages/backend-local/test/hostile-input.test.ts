/**
 * Property-based bad input (issue 18) at the local backend's public API: random and hostile specs
 * and configs at openSandbox, then argv, env maps, stdin, options, paths, signals, labels and
 * checkpoint ids at one open sandbox (scripts/hostile-input.ts). Every call ends in a result or a
 * typed AgentboxError, never a hang or an untyped exception; nothing outside the sandboxes' root
 * changes. The sandbox is a bubblewrap jail: without isolation a command may touch any file of
 * the user by design (the README says so), so only the jail can promise "nothing outside".
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anyValue,
  fingerprint,
  hostileString,
  sandboxProperties,
  settles,
  show,
} from '../../../scripts/hostile-input.ts';
import '../src/index.js';
import { bwrapMissing } from './bwrap-available.js';

const NUM_RUNS = Number(process.env.AGENTBOX_FUZZ_RUNS ?? 40);
let base: string;
let root: string;
let outside: Record<string, string>;
let cwdBefore: Record<string, string>;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'agentbox-hostile-'));
  root = join(base, 'root');
  // Files beside the sandboxes' root that no call may touch.
  mkdirSync(join(base, 'canary', 'deep'), { recursive: true });
  writeFileSync(join(base, 'canary', 'file.txt'), 'must stay');
  writeFileSync(join(base, 'canary', 'deep', 'x'), 'must stay too');
  mkdirSync(root);
  outside = fingerprint(base, [root]);
  cwdBefore = fingerprint(process.cwd(), [join(process.cwd(), 'node_modules'), join(process.cwd(), 'dist')]);
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

function expectNothingOutside(): void {
  expect(fingerprint(base, [root])).toEqual(outside);
  expect(
    fingerprint(process.cwd(), [join(process.cwd(), 'node_modules'), join(process.cwd(), 'dist')]),
  ).toEqual(cwdBefore);
}

const hostileSpec = fc.oneof(
  { weight: 1, arbitrary: anyValue },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        backend: fc.oneof({ weight: 4, arbitrary: fc.constant('local') }, hostileString, anyValue),
        id: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, hostileString, anyValue),
        config: fc.oneof(
          { weight: 1, arbitrary: anyValue },
          {
            weight: 4,
            arbitrary: fc
              .record(
                {
                  root: fc.oneof(
                    { weight: 3, arbitrary: fc.constant('ROOT') },
                    fc.constantFrom('', null, 1, true, []),
                  ),
                  keep: fc.oneof({ weight: 3, arbitrary: fc.boolean() }, anyValue),
                  isolation: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('none', 'bwrap') }, anyValue),
                  bwrap: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, anyValue),
                  // A key the schema does not have.
                  roots: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, anyValue),
                },
                { requiredKeys: [] },
              )
              // A key whose value came out undefined is left out, as a caller would write it.
              .map((config) => Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined))),
          },
        ),
        policy: fc.oneof(
          { weight: 4, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: anyValue },
          fc.record(
            {
              labels: fc.oneof(fc.dictionary(hostileString, hostileString, { maxKeys: 3 }), anyValue),
              network: fc.oneof(fc.constantFrom({ mode: 'none' }, { mode: 'open' }), anyValue),
              limits: fc.oneof(
                fc.record({ pids: anyValue, memoryMiB: anyValue }, { requiredKeys: [] }),
                anyValue,
              ),
              strict: anyValue,
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: ['backend'] },
    ),
  },
);

describe.skipIf(bwrapMissing)('hostile input (local)', () => {
  it('random and hostile specs and configs: a sandbox (closed again) or a typed error, nothing outside the root touched', async () => {
    const codes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(hostileSpec, async (spec) => {
        // The root is this file's own (or not a path at all): never the default one in the shared temp dir.
        if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
          const s = spec as { config?: unknown };
          if (s.config === undefined) s.config = { root };
          const config = s.config as { root?: unknown } | null;
          if (config && typeof config === 'object' && (!('root' in config) || config.root === 'ROOT'))
            config.root = root;
        }
        let opened: SandboxBackend | undefined;
        const error = await settles(`openSandbox(${show(spec)})`, async () => {
          opened = await openSandbox(spec as never);
        });
        codes[error?.code ?? 'opened'] = (codes[error?.code ?? 'opened'] ?? 0) + 1;
        if (opened) await opened.close();
      }),
      { numRuns: NUM_RUNS * 2 },
    );
    console.log(`hostile specs (local): ${JSON.stringify(codes)}`);
    expectNothingOutside();
  }, 120_000);

  it('hostile argv, env, stdin, options, paths, signals, labels and checkpoint ids at one sandbox: results or typed errors', async () => {
    await using sandbox = await openSandbox({ backend: 'local', config: { root, isolation: 'bwrap' } });
    const codes = await sandboxProperties(sandbox, NUM_RUNS);
    console.log(`hostile calls (local bwrap): ${JSON.stringify(codes)}`);
    expectNothingOutside();
  }, 120_000);
});
