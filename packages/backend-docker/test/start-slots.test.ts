/** The per-daemon queue of exec starts (exec.ts): first come first served, and a bounded wait. */
import { describe, expect, it } from 'vitest';
import { Slots } from '../src/exec.js';

const context = { backend: 'docker', operation: 'exec' };

describe('exec start slots', () => {
  it('runs at most `size` at once, the rest in the order they came', async () => {
    const slots = new Slots(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        slots.run(async () => {
          running++;
          most = Math.max(most, running);
          order.push(i);
          await new Promise((resolve) => setTimeout(resolve, 10));
          running--;
        }, context),
      ),
    );
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a start that waits longer than the bound fails SANDBOX_UNAVAILABLE, and the queue goes on', async () => {
    const slots = new Slots(1, 50);
    let release!: () => void;
    const held = slots.run(() => new Promise<void>((resolve) => (release = resolve)), context);
    await expect(slots.run(async () => 'never', context)).rejects.toMatchObject({
      code: 'SANDBOX_UNAVAILABLE',
      message: expect.stringMatching(/none of the commands ahead of this one within 50 ms/),
    });
    const after = slots.run(async () => 'ran', context);
    release();
    await held;
    expect(await after).toBe('ran');
    // A failing holder frees its slot too.
    await expect(slots.run(() => Promise.reject(new Error('boom')), context)).rejects.toThrow('boom');
    expect(await slots.run(async () => 'again', context)).toBe('again');
  });
});
