/** The store's long-lived shell (shell-exec.ts), run here by this machine's /bin/sh and dd. */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type ShellPipes, ShellStoreExec, STORE_SHELL } from '../src/backend.js';

const context = { backend: 'test', operation: 'checkpoint' };
const children: ChildProcessWithoutNullStreams[] = [];
const killGroup = (child: ChildProcessWithoutNullStreams) => {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {}
};
afterEach(() => {
  for (const child of children.splice(0)) killGroup(child);
});

/** Open the shell as a local process; `opened` counts the shells started. */
function localShell(): {
  open: () => Promise<ShellPipes>;
  opened: () => number;
  last: () => ChildProcessWithoutNullStreams;
} {
  let count = 0;
  return {
    open: async () => {
      // Its own process group, so that ending it ends what it runs too.
      const child = spawn('/bin/sh', ['-c', STORE_SHELL], { detached: true });
      children.push(child);
      count++;
      return {
        stdout: child.stdout,
        stderr: child.stderr,
        write: async (chunk) => {
          if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
        },
        close: () => killGroup(child),
        ended: once(child, 'exit'),
      };
    },
    opened: () => count,
    last: () => children[children.length - 1]!,
  };
}

// Each argument back, NUL-terminated: what the command was given, byte for byte.
const ECHO_ARGS = ['sh', '-c', 'for a; do printf "%s\\0" "$a"; done', 'echo-args'];

describe('ShellStoreExec', () => {
  it('gives a command its arguments, its stdin and its status exactly, over one shell', async () => {
    const shell = localShell();
    const store = new ShellStoreExec(shell.open, context);
    const args = ['plain', '', ' spaced out ', 'trailing newlines\n\n', 'quote \' " $HOME `x`', 'ünï\tcode'];
    const echoed = await store.exec([...ECHO_ARGS, ...args], {});
    expect(echoed.exitCode).toBe(0);
    expect(echoed.stdout.toString()).toBe(args.map((a) => `${a}\0`).join(''));
    const bytes = new Uint8Array(200_003).map((_, i) => (i * 7919) % 256);
    const copied = await store.exec(['cat'], { stdin: bytes });
    expect(Buffer.compare(copied.stdout, bytes)).toBe(0);
    const mixed = await store.exec(['sh', '-c', 'printf out; printf err >&2; exit 7'], {});
    expect(mixed).toEqual({ exitCode: 7, stdout: Buffer.from('out'), stderr: Buffer.from('err') });
    expect((await store.exec(['no-such-command-here'], {})).exitCode).toBe(127);
    expect(shell.opened()).toBe(1);
    store.close();
  });

  it('a command that reads less than its stdin leaves nothing for the next one', async () => {
    const store = new ShellStoreExec(localShell().open, context);
    const first = await store.exec(['sh', '-c', 'read -r line; echo "$line"'], {
      stdin: Buffer.from(`one\n${'two\n'.repeat(50_000)}`),
    });
    expect(first.stdout.toString()).toBe('one\n');
    const next = await store.exec(['cat'], { stdin: Buffer.from('next') });
    expect(next.stdout.toString()).toBe('next');
    store.close();
  });

  it('output that looks like an answer marker, without the nonce, stays output', async () => {
    const store = new ShellStoreExec(localShell().open, context);
    const forged = '\n00000000000000000000000000000000 0\nafter\n';
    const r = await store.exec(
      ['sh', '-c', 'printf "%s" "$1"; printf "%s" "$1" >&2; exit 3', 'x', forged],
      {},
    );
    expect(r).toEqual({ exitCode: 3, stdout: Buffer.from(forged), stderr: Buffer.from(forged) });
    store.close();
  });

  it('a shell that dies fails the call in flight, and the next call opens a new one', async () => {
    const shell = localShell();
    const store = new ShellStoreExec(shell.open, context);
    expect((await store.exec(['true'], {})).exitCode).toBe(0);
    const stuck = store.exec(['sleep', '30'], {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    killGroup(shell.last());
    await expect(stuck).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
    expect((await store.exec(['echo', 'again'], {})).stdout.toString()).toBe('again\n');
    expect(shell.opened()).toBe(2);
    store.close();
  });

  it('an aborted call ends the shell and rejects as aborted', async () => {
    const shell = localShell();
    const store = new ShellStoreExec(shell.open, context);
    const cut = new AbortController();
    const running = store.exec(['sleep', '30'], { signal: cut.signal });
    setTimeout(() => cut.abort(), 100);
    await expect(running).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await store.exec(['true'], {})).exitCode).toBe(0);
    expect(shell.opened()).toBe(2);
    store.close();
  });

  it('any arguments and any stdin arrive byte for byte (property)', async () => {
    const store = new ShellStoreExec(localShell().open, context);
    // argv cannot hold NUL; any other code point may appear.
    const arg = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0'));
    await fc.assert(
      fc.asyncProperty(
        fc.array(arg, { maxLength: 5 }),
        fc.uint8Array({ maxLength: 70_000 }),
        async (args, stdin) => {
          const echoed = await store.exec([...ECHO_ARGS, ...args], {});
          expect(echoed.stdout.toString()).toBe(args.map((a) => `${a}\0`).join(''));
          const copied = await store.exec(['cat'], { stdin });
          expect(Buffer.compare(copied.stdout, stdin)).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
    store.close();
  }, 60_000);
});
