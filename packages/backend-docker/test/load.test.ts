/**
 * Load on one Docker daemon (issue 18): sandboxes open at once, each with callers running execs
 * concurrently, every result byte-exact and its own (scripts/load.ts). `npm test` runs a light
 * 5 x 4; AGENTBOX_LOAD=20x10 runs the full shape here, as `npm run bench -- load` does.
 */
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadShape, openMany, runLoad } from '../../../scripts/load.ts';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const shape = loadShape(process.env.AGENTBOX_LOAD, { sandboxes: 5, concurrent: 4, rounds: 3, bytes: 16_384 });
let sandboxes: SandboxBackend[] = [];

beforeAll(async () => {
  sandboxes = await openMany(shape.sandboxes, () =>
    openSandbox({ backend: 'docker', config: TEST_CONFIG, policy: { labels: { [RUN_LABEL]: runId } } }),
  );
}, 180_000);

afterAll(async () => {
  await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
  expect(await runObjects()).toEqual([]);
});

describe('load (docker)', () => {
  it(`${shape.sandboxes} sandboxes x ${shape.concurrent} concurrent execs x ${shape.rounds}: every result byte-exact and its own`, async () => {
    const report = await runLoad(sandboxes, shape);
    console.log(
      `load docker: ${JSON.stringify({ ...report, mismatches: report.mismatches.length, failures: report.failures.length })}`,
    );
    expect(report.failures).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(report.execs).toBe(shape.sandboxes * shape.concurrent * shape.rounds);
  }, 300_000);
});
