/**
 * Exec creation refused as paused while inspect says running (exec.ts): Docker's paused flag
 * can lag just after an unpause, so creation is asked again; a container that inspect shows
 * paused is SANDBOX_UNAVAILABLE at once. A fake container stands in for the daemon: the lag
 * cannot be produced on demand with a real one.
 */
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { openExec } from '../src/exec.js';

const context = { backend: 'docker', operation: 'exec' };
const opts = { argv: ['true'], user: '1000:1000', stdin: false };

function refused(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), {
    statusCode,
    json: { message },
  });
}

/** A container whose exec creation fails `paused` times as paused, then with a 500 that ends the test. */
function fakeContainer(paused: number, status: string) {
  const calls = { exec: 0 };
  const container = {
    modem: { socketPath: `/fake/${Math.random()}` },
    inspect: async () => ({ State: { Status: status } }),
    exec: async () => {
      calls.exec++;
      if (calls.exec <= paused)
        throw refused(409, 'Container abc is paused, unpause the container before exec');
      throw refused(500, 'the fake daemon stops here');
    },
  };
  return { container: container as unknown as Docker.Container, calls };
}

describe('exec creation while Docker still reports the container paused', () => {
  it('asks again while inspect says running, and goes on when the flag clears', async () => {
    const { container, calls } = fakeContainer(2, 'running');
    await expect(openExec({ container, context }, opts)).rejects.toThrow('the fake daemon stops here');
    expect(calls.exec).toBe(3);
  });

  it('gives up after a bounded number of tries with Docker’s own message', async () => {
    const { container, calls } = fakeContainer(100, 'running');
    await expect(openExec({ container, context }, opts)).rejects.toThrow(/is paused/);
    expect(calls.exec).toBe(6);
  });

  it('does not ask again when inspect shows the container paused: SANDBOX_UNAVAILABLE', async () => {
    const { container, calls } = fakeContainer(100, 'paused');
    await expect(openExec({ container, context }, opts)).rejects.toMatchObject({
      code: 'SANDBOX_UNAVAILABLE',
      message: expect.stringMatching(/container is paused/),
    });
    expect(calls.exec).toBe(1);
  });
});
