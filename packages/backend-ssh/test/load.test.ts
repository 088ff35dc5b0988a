/**
 * Load on one SSH host (issue 18): sandboxes open at once (one connection each), each with
 * callers running execs concurrently, every result byte-exact and its own (scripts/load.ts).
 * `npm test` runs a light 5 x 4; AGENTBOX_LOAD=20x10 runs the full shape here, as
 * `npm run bench -- load` does.
 */
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadShape, openMany, runLoad } from '../../../scripts/load.ts';
import '../src/index.js';
import { sshConfig } from './sshd.ts';

const shape = loadShape(process.env.AGENTBOX_LOAD, { sandboxes: 5, concurrent: 4, rounds: 3, bytes: 16_384 });
let sandboxes: SandboxBackend[] = [];

beforeAll(async () => {
  sandboxes = await openMany(shape.sandboxes, () => openSandbox({ backend: 'ssh', config: sshConfig() }));
}, 180_000);

afterAll(async () => {
  await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
});

describe('load (ssh)', () => {
  it(`${shape.sandboxes} sandboxes x ${shape.concurrent} concurrent execs x ${shape.rounds}: every result byte-exact and its own`, async () => {
    const report = await runLoad(sandboxes, shape);
    console.log(
      `load ssh: ${JSON.stringify({ ...report, mismatches: report.mismatches.length, failures: report.failures.length })}`,
    );
    expect(report.failures).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(report.execs).toBe(shape.sandboxes * shape.concurrent * shape.rounds);
  }, 300_000);
});
