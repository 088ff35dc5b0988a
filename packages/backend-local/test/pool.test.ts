/**
 * createPool over the local backend: strict mode opens pooled sandboxes (the pool's label is
 * enforced, kept in labels.json), each open is a fresh directory, and sweep finds what a pool
 * left by its label and nothing else.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, POOL_LABEL } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { local } from '../src/index.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-local-pool-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('local pool', () => {
  it('hands out a fresh directory every time, and close removes the ones not handed out', async () => {
    const pool = createPool({ spec: { backend: 'local', config: { root } }, size: 2, name: 'fresh' });
    await pool.ready();
    const first = await pool.open();
    expect(first.enforcement.labels.status).toBe('enforced');
    await first.writeFile('note.txt', 'from the first task');
    await first.close();
    const second = await pool.open();
    expect(second.workdir).not.toBe(first.workdir);
    expect((await second.exec('cat note.txt')).exitCode).not.toBe(0);
    await pool.close();
    expect(await readdir(root)).toEqual([second.id]);
    await second.close();
    expect(await readdir(root)).toEqual([]);
  });

  it("sweep finds a pool's sandboxes by its label, and another label matches none", async () => {
    const pool = createPool({ spec: { backend: 'local', config: { root } }, size: 2, name: 'left' });
    await pool.ready();
    const config = { root, keep: false, isolation: 'none', bwrap: 'bwrap' } as const;
    const sweep = local.sweep!;
    const other = await sweep({ config, dryRun: true, labels: { [POOL_LABEL]: 'another' } });
    expect(other.sandboxes).toEqual([]);
    // As after a crash: the pool's sandboxes are left where they are, and swept.
    const swept = await sweep({ config, dryRun: false, labels: pool.labels });
    expect(swept.sandboxes).toHaveLength(2);
    expect(swept.sandboxes.every((s) => s.removed)).toBe(true);
    expect(await readdir(root)).toEqual([]);
    await pool.close();
  });
});
