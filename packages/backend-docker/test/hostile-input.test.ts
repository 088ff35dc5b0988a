/**
 * Property-based bad input (issue 18) at one docker sandbox: hostile argv, env maps, stdin,
 * options, paths, signals, labels and checkpoint ids (scripts/hostile-input.ts). Every call ends
 * in a result or a typed AgentboxError, never a hang or an untyped exception; nothing of this
 * machine's files changes (the package directory is compared before and after), and the sandbox
 * still works and its checkpoints verify at the end. One sandbox for the file.
 */
import { join } from 'node:path';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, sandboxProperties } from '../../../scripts/hostile-input.ts';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const NUM_RUNS = Number(process.env.AGENTBOX_FUZZ_RUNS ?? 15);
const skip = [join(process.cwd(), 'node_modules'), join(process.cwd(), 'dist')];
let sandbox: SandboxBackend;
let before: Record<string, string>;

beforeAll(async () => {
  before = fingerprint(process.cwd(), skip);
  sandbox = await openSandbox({
    backend: 'docker',
    config: TEST_CONFIG,
    policy: { labels: { [RUN_LABEL]: runId } },
  });
});

afterAll(async () => {
  await sandbox?.close();
  expect(await runObjects()).toEqual([]);
});

describe('hostile input (docker)', () => {
  it('hostile argv, env, stdin, options, paths, signals, labels and checkpoint ids: results or typed errors', async () => {
    const codes = await sandboxProperties(sandbox, NUM_RUNS);
    console.log(`hostile calls (docker): ${JSON.stringify(codes)}`);
    expect(fingerprint(process.cwd(), skip)).toEqual(before);
  }, 120_000);
});
