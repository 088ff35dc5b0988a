/**
 * Pause and resume against Docker's lagging paused flag (pause.ts). A fake container answers
 * as Docker does when a containerd event is handled after the next call: "already paused" over
 * a running container, "not paused" over a frozen one. The lag cannot be produced on demand with
 * a real daemon; the real pause and resume run in every docker checkpoint test.
 */
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { freeze, resume } from '../src/pause.js';

const context = { backend: 'docker', operation: 'checkpoint' };

type Answer = 'ok' | string;

/** A container whose pause and unpause calls give the scripted answers in turn (then 'ok'). */
function scripted(pauses: Answer[], unpauses: Answer[]) {
  const calls: string[] = [];
  const answer = async (kind: string, queue: Answer[]) => {
    calls.push(kind);
    const next = queue.shift() ?? 'ok';
    if (next === 'ok') return;
    throw Object.assign(new Error(`(HTTP code ${next.startsWith('404') ? 404 : 409}) ${next}`), {
      statusCode: next.startsWith('404') ? 404 : 409,
      json: { message: next },
    });
  };
  const container = {
    pause: () => answer('pause', pauses),
    unpause: () => answer('unpause', unpauses),
  } as unknown as Docker.Container;
  return { container, calls };
}

const ALREADY = 'Container abc is already paused';
const NOT = 'Container abc is not paused';

describe('freeze', () => {
  it('"already paused" is not taken as frozen: it asks again, and a pause of its own counts', async () => {
    const { container, calls } = scripted([ALREADY], []);
    expect(await freeze(container, context)).toBe(true);
    expect(calls).toEqual(['pause', 'pause']);
  });

  it('is false while Docker keeps calling it paused, and never ends a pause it did not make', async () => {
    const { container, calls } = scripted([ALREADY, ALREADY, ALREADY], []);
    expect(await freeze(container, context)).toBe(false);
    expect(calls).toEqual(['pause', 'pause', 'pause']);
  });

  it('a daemon error other than the freezer or the flag is thrown, typed', async () => {
    const { container } = scripted(['404 No such container: abc'], []);
    await expect(freeze(container, context)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('resume', () => {
  it('"not paused" just after a pause is asked again: the unpause that follows is the one that counts', async () => {
    const { container, calls } = scripted([], [NOT]);
    await resume(container, context);
    expect(calls).toEqual(['unpause', 'unpause']);
  });

  it('believes "not paused" once it is still the answer after the last wait', async () => {
    const { container, calls } = scripted([], [NOT, NOT, NOT, NOT]);
    await resume(container, context);
    expect(calls).toEqual(['unpause', 'unpause', 'unpause']);
  });

  it('any other failure, still there on the last try, is thrown', async () => {
    const { container, calls } = scripted(
      [],
      ['cannot resume: boom', 'cannot resume: boom', 'cannot resume: boom'],
    );
    await expect(resume(container, context)).rejects.toThrow(/boom/);
    expect(calls).toHaveLength(3);
  });
});
