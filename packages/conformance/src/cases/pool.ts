/** Warm pools: createPool over the backend, and the backend's sweep finding a pool's sandboxes by its label. */
import { randomBytes } from 'node:crypto';
import {
  createPool,
  loadBackend,
  POOL_LABEL,
  parseBackendConfig,
  type SandboxBackend,
  type SandboxSpec,
} from '@agentbox/core';
import { expect } from 'vitest';
import { type CaseContext, defineGroup } from '../case.js';
import { eventually, expectError, output } from '../helpers.js';

function poolSpec(ctx: CaseContext): SandboxSpec {
  if (!ctx.options.pool) ctx.skip('no `pool` spec given: the warm-pool cases need the spec `open` uses');
  return ctx.options.pool;
}

/** A pool name no other run shares, so its label selects this case's sandboxes alone. */
const poolName = () => `conformance-${randomBytes(5).toString('hex')}`;

export const poolCases = defineGroup({
  name: 'pool',
  cases: [
    {
      id: 'pool.fresh-each-time',
      title:
        'createPool hands out a ready sandbox, a fresh one each time: what one task wrote is not in the next',
      timeoutMs: 120_000,
      async run(ctx) {
        const pool = createPool({ spec: poolSpec(ctx), size: 1, name: poolName() });
        try {
          await pool.ready();
          expect(pool.idle).toBe(1);
          const first = await pool.open();
          try {
            await first.writeFile('pool-note.txt', 'from the first task');
            expect(await output(first, ['cat', 'pool-note.txt'])).toBe('from the first task');
          } finally {
            await first.close();
          }
          const second = await pool.open();
          try {
            expect(second.id).not.toBe(first.id);
            await expectError(second, 'NOT_FOUND', () => second.readFile('pool-note.txt'), 'readFile');
          } finally {
            await second.close();
          }
        } finally {
          await pool.close();
        }
      },
    },
    {
      id: 'pool.label-sweep-drain',
      title:
        "a pool's sandboxes carry its label, so the backend's sweep finds them; closing the pool removes the ones it holds, not the ones handed out",
      timeoutMs: 120_000,
      async run(ctx) {
        const spec = poolSpec(ctx);
        const definition = await loadBackend(spec.backend);
        const sweep = definition.sweep;
        if (!sweep) return ctx.skip('the backend has no sweep');
        const config = parseBackendConfig(spec.backend, definition.configSchema, spec.config, 'sweep');
        const name = poolName();
        const labelled = async () =>
          (await sweep({ config, dryRun: true, labels: { [POOL_LABEL]: name } })).sandboxes
            .map((s) => s.id)
            .sort();
        const pool = createPool({ spec, size: 1, name });
        let handed: SandboxBackend | undefined;
        try {
          await pool.ready();
          const ready = await labelled();
          expect(ready).toHaveLength(1);
          handed = await pool.open();
          expect(ready).toEqual([handed.id]);
          await pool.ready();
          const both = await labelled();
          expect(both).toHaveLength(2);
          expect(both).toContain(handed.id);
          await pool.close();
          let left: string[] = [];
          const drained = await eventually(
            async () => {
              left = await labelled();
              return left.length === 1 && left[0] === handed!.id;
            },
            ctx.ms(10_000),
            250,
          );
          expect(drained, `left after the pool closed: ${left.join(', ')}`).toBe(true);
          expect(await output(handed, 'echo still mine')).toBe('still mine\n');
          await handed.close();
          const gone = await eventually(async () => (await labelled()).length === 0, ctx.ms(10_000), 250);
          expect(gone, 'the handed-out sandbox is gone once closed').toBe(true);
        } finally {
          await pool.close();
          await handed?.close();
        }
      },
    },
  ],
});
