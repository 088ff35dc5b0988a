/**
 * The docker backend against its own sandbox's commands (issue 15): checkpoints run with the
 * container paused and never hang next to file transfers and sessions, kills reach processes
 * that left the group but hold the output, argv[0] is never a wrapper option, the workspace
 * quota, and what the enforcement report says about them.
 */
import { openSandbox, type Policy, type SandboxBackend } from '@agentbox/core';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/index.js';
import type { DockerSandbox } from '../src/index.js';
import { docker, RUN_LABEL, runId, TEST_CONFIG } from './helpers.ts';

const labels = { [RUN_LABEL]: runId };

function open(policy: Policy = {}, config: Record<string, unknown> = {}, extra: { id?: string } = {}) {
  return openSandbox({
    backend: 'docker',
    policy: { ...policy, labels: { ...labels, ...policy.labels } },
    config: { ...TEST_CONFIG, ...config },
    ...extra,
  }) as Promise<DockerSandbox>;
}

/** Reject if `promise` takes longer than `ms`: a hang is a failure, not a vitest timeout. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function sleepers(sandbox: SandboxBackend, mark: string): Promise<number> {
  const r = await sandbox.exec('ps -o pid,args');
  return r.stdout.split('\n').filter((l) => new RegExp(`^\\s*\\d+\\s+sleep ${mark}\\s*$`).test(l)).length;
}

describe('checkpoints with the container paused', () => {
  let sandbox: DockerSandbox;
  beforeAll(async () => {
    sandbox = await open();
  }, 120_000);
  afterAll(async () => {
    await sandbox?.close();
  }, 60_000);

  it('writeFile -> exec -> checkpoint does not hang', async () => {
    await within(sandbox.writeFile('seq1.txt', 'one'), 30_000, 'writeFile');
    expect((await within(sandbox.exec('cat seq1.txt'), 30_000, 'exec')).stdout).toBe('one');
    expect(sandbox.sessions.lastPath).toBe('session');
    const ckpt = await within(sandbox.checkpoint(), 60_000, 'checkpoint');
    expect(ckpt.id).toMatch(/^ckpt-/);
    // And the sandbox works afterwards, on both paths.
    expect((await within(sandbox.exec('echo after'), 30_000, 'exec after')).stdout).toBe('after\n');
    expect(await within(sandbox.readTextFile('seq1.txt'), 30_000, 'readFile after')).toBe('one');
  });

  it('writeFile -> checkpoint -> exec -> rollback does not hang, and restores', async () => {
    await within(sandbox.writeFile('seq2.txt', 'before'), 30_000, 'writeFile');
    const ckpt = await within(sandbox.checkpoint(), 60_000, 'checkpoint');
    await within(sandbox.exec('echo changed > seq2.txt'), 30_000, 'exec');
    await within(sandbox.rollback(ckpt), 60_000, 'rollback');
    expect(await within(sandbox.readTextFile('seq2.txt'), 30_000, 'readFile')).toBe('before');
    expect((await within(sandbox.exec('cat seq2.txt'), 30_000, 'exec after')).stdout).toBe('before');
  });

  it('execs, file transfers and a checkpoint at the same time all finish', async () => {
    await sandbox.writeFile('conc.txt', 'there');
    const work = [
      ...Array.from({ length: 6 }, (_, i) =>
        sandbox.exec(['sh', '-c', `echo c${i} > conc${i}.txt; echo ${i}`]),
      ),
      ...Array.from({ length: 3 }, (_, i) => sandbox.writeFile(`concw${i}.txt`, `w${i}`)),
      sandbox.checkpoint(),
      sandbox.readTextFile('conc.txt'),
      sandbox.exec('sleep 0.3; echo slow', { stdin: 'x' }),
    ];
    await within(Promise.all(work), 90_000, 'the concurrent operations');
  });

  it('the container is paused while a checkpoint runs, and running again after', async () => {
    // A bigger tree, so the checkpoint lasts long enough to be seen.
    await sandbox.exec('mkdir -p big && i=0; while [ $i -lt 400 ]; do echo $i > big/f$i; i=$((i+1)); done');
    const container = docker.getContainer(sandbox.containerId);
    let pausedSeen = false;
    let done = false;
    const watching = (async () => {
      while (!done) {
        if ((await container.inspect()).State.Paused) pausedSeen = true;
      }
    })();
    await sandbox.checkpoint();
    done = true;
    await watching;
    expect(pausedSeen).toBe(true);
    expect((await container.inspect()).State.Paused).toBe(false);
  });

  it('a command running across a checkpoint is frozen, not killed, and finishes', async () => {
    const pending = sandbox.exec('sleep 1; echo survived');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sandbox.checkpoint();
    const r = await within(pending, 30_000, 'the command');
    expect(r.stdout).toBe('survived\n');
  });

  it('a process forking in a tight loop cannot stop a checkpoint, and runs on afterwards', async () => {
    await sandbox.exec("setsid sh -c 'while :; do /bin/true; done' </dev/null >/dev/null 2>&1 &");
    try {
      for (let i = 0; i < 3; i++) await within(sandbox.checkpoint(), 60_000, `checkpoint ${i}`);
      // Not left stopped: its state is R or S, never T.
      const states = await sandbox.exec(
        'for f in /proc/[0-9]*/stat; do read -r t < $f; case $t in *"(sh)"*) t=${t##*) }; echo ${t%% *};; esac; done 2>/dev/null',
      );
      expect(states.stdout).not.toMatch(/^T$/m);
      expect((await sandbox.exec('echo alive')).stdout).toBe('alive\n');
    } finally {
      await sandbox.exec("pkill -f 'while :; do /bin/true' ; exit 0");
    }
  });

  it('reports checkpointIntegrity as enforced, and keeps the manifest key in a container label', async () => {
    expect(sandbox.enforcement.checkpointIntegrity.status).toBe('enforced');
    expect(sandbox.enforcement.checkpointIntegrity.detail).toMatch(/paused/);
    const info = await docker.getContainer(sandbox.containerId).inspect();
    expect(info.Config.Labels['agentbox.checkpoint-key']).toMatch(/^[0-9a-f]{64}$/);
    // Not in the sandbox's own environment.
    const env = await sandbox.exec('cat /proc/1/environ /proc/self/environ | tr "\\0" "\\n"');
    expect(env.stdout).not.toContain(info.Config.Labels['agentbox.checkpoint-key']!);
  });
});

describe('re-attach to a container left paused', () => {
  it('unpauses it and runs commands', async () => {
    const id = `paused-${runId}`;
    const first = await open({}, { keep: true }, { id });
    try {
      await first.exec('echo hi > f');
      await first.close();
      await docker.getContainer(first.containerId).pause();
      const second = await within(open({}, {}, { id }), 60_000, 're-attach');
      try {
        expect((await second.exec('cat f')).stdout).toBe('hi\n');
      } finally {
        await second.close();
      }
    } finally {
      await docker
        .getContainer(first.containerId)
        .unpause()
        .catch(() => {});
    }
  }, 120_000);
});

describe('a checkpoint while the container is paused by someone else', () => {
  it('fails SANDBOX_UNAVAILABLE and leaves the pause alone; once unpaused, it checkpoints', async () => {
    const sandbox = await open();
    const container = docker.getContainer(sandbox.containerId);
    try {
      await sandbox.exec('echo one > f');
      // Start the helper first: only the checkpoint's own pause is under test.
      await sandbox.listCheckpoints();
      await container.pause();
      await expect(sandbox.checkpoint()).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
      expect((await container.inspect()).State.Paused).toBe(true);
      await container.unpause();
      const info = await sandbox.checkpoint();
      expect((await sandbox.exec('cat f')).stdout).toBe('one\n');
      await sandbox.exec('echo two > f');
      await sandbox.rollback(info);
      expect((await sandbox.exec('cat f')).stdout).toBe('one\n');
    } finally {
      await container.unpause().catch(() => {});
      await sandbox.close();
    }
  }, 120_000);
});

describe('a checkpoint whose pause answer was lost, or whose unpause failed', () => {
  const proto = Docker.Container.prototype;
  const cases = [
    {
      name: 'an unpause that failed',
      method: 'unpause',
      // Every unpause of this checkpoint fails, as a daemon error would make it.
      inject: () => () => Promise.reject(new Error('injected: the daemon failed')),
    },
    {
      name: 'a pause whose answer was lost (it happened)',
      method: 'pause',
      // The daemon pauses the container, and the answer never arrives (a connection cut there).
      inject: (real: typeof proto.pause) =>
        async function (this: Docker.Container) {
          await real.call(this);
          throw new Error('injected: the connection was cut');
        },
    },
  ] as const;
  for (const { name, method, inject } of cases) {
    it(`${name}: the next checkpoint ends that pause first`, async () => {
      const sandbox = await open();
      const container = docker.getContainer(sandbox.containerId);
      const real = proto[method];
      try {
        await sandbox.exec('echo one > f');
        await sandbox.listCheckpoints();
        proto[method] = inject(real) as typeof real;
        await expect(sandbox.checkpoint()).rejects.toThrow(/injected/);
        proto[method] = real;
        expect((await container.inspect()).State.Paused).toBe(true);
        const info = await sandbox.checkpoint();
        expect((await container.inspect()).State.Paused).toBe(false);
        await sandbox.exec('echo two > f');
        await sandbox.rollback(info);
        expect((await sandbox.exec('cat f')).stdout).toBe('one\n');
      } finally {
        proto[method] = real;
        await container.unpause().catch(() => {});
        await sandbox.close();
      }
    }, 120_000);
  }
});

describe('commands', () => {
  for (const fastPath of [true, false]) {
    describe(fastPath ? 'fast path' : 'plain path', () => {
      let sandbox: DockerSandbox;
      beforeAll(async () => {
        sandbox = await open({}, { fastPath });
      }, 120_000);
      afterAll(async () => {
        await sandbox?.close();
      }, 60_000);

      it('argv beginning with "-" is a command name: exit 127', async () => {
        const r = await sandbox.exec(['-c', 'id']);
        expect(r.exitCode).toBe(127);
        expect(r.stdout).not.toContain('uid=');
      });

      it('a timeout kills a setsid process that still holds the output', async () => {
        const mark = String(600_000 + Math.floor(Math.random() * 99_999));
        const code = await sandbox
          .exec(`setsid sh -c 'exec sleep ${mark}' & sleep 30`, { timeoutMs: 1_500 })
          .then(
            () => 'ok',
            (e: { code?: string }) => e.code,
          );
        expect(code).toBe('TIMEOUT');
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await sleepers(sandbox, mark)).toBe(0);
      });

      it('a kill spares what let go of the output (it dies at close, as the README says)', async () => {
        const mark = String(600_000 + Math.floor(Math.random() * 99_999));
        const code = await sandbox
          .exec(`setsid sh -c 'exec sleep ${mark}' </dev/null >/dev/null 2>&1 & sleep 30`, {
            timeoutMs: 1_500,
          })
          .then(
            () => 'ok',
            (e: { code?: string; message?: string }) =>
              e.code === 'TIMEOUT' ? e.code : `${e.code}: ${e.message}`,
          );
        expect(code).toBe('TIMEOUT');
        expect(await sleepers(sandbox, mark)).toBe(1);
      });
    });
  }
});

describe('a sandbox whose user is root', () => {
  // Root in the container has no capability: the execute-only copies the session shells and the
  // plain path's wrappers run from are out of its reach, so /proc gives it nothing of theirs.
  for (const fastPath of [true, false]) {
    it(`${fastPath ? 'fast' : 'plain'} path: a root process writing into every fd it can open never lands in a result`, async () => {
      const sandbox = (await openSandbox({
        backend: 'docker',
        policy: { labels },
        config: { ...TEST_CONFIG, user: '0:0', fastPath },
      })) as DockerSandbox;
      try {
        expect((await sandbox.exec('id -u')).stdout).toBe('0\n');
        for (let i = 0; i < 3; i++) await sandbox.exec(['true']);
        // The copies cannot be read, made readable, replaced or moved away by root in the container.
        const probe = await sandbox.exec(
          'cat /dev/.agentbox/sh >/dev/null 2>&1 && echo read; chmod 0755 /dev/.agentbox/sh 2>/dev/null && echo chmod; ' +
            'cp /bin/sh /dev/.agentbox/x 2>/dev/null && echo write; mv /dev/.agentbox /dev/moved 2>/dev/null && echo moved; echo done',
        );
        expect(probe.stdout).toBe('done\n');
        // PID 1 runs as the copies' owner (it installs them): not even root in the container can
        // signal it, and its TERM trap would otherwise end the container.
        const signals = await sandbox.exec(
          'kill -TERM 1 2>/dev/null && echo term; kill -KILL 1 2>/dev/null && echo kill; echo done',
        );
        expect(signals.stdout).toBe('done\n');
        expect((await sandbox.exec(['true'])).exitCode).toBe(0);
        // BusyBox is one program: setsid is a link to the sh copy, not a second copy in memory.
        const copies = await sandbox.exec('stat -c "%i %h %a %u" /dev/.agentbox/sh /dev/.agentbox/setsid');
        const [sh, setsid] = copies.stdout.trim().split('\n');
        expect(sh).toMatch(/^\d+ 2 111 65533$/);
        expect(setsid).toBe(sh);
        // The attacker of the conformance case tamper.session-pipe-injection, as root. It first
        // waits for the command that started it to end: that command's own stdout is a session
        // pipe, and a write into it just as it ends is a race this test is not about (the README
        // says so). What is left to attack is what lives on: the session shells. It takes its
        // list of targets once and says so in /tmp/attack-armed; the clean commands start only
        // then, or a loaded machine could let it list one of them, an ordinary process of the
        // sandbox user, whose own stdout any process of that user may write into.
        const attacker = [
          'sleep 1; me=/proc/$$; set -- /proc/[0-9]*; i=0; : >/tmp/attack-armed',
          'while [ ! -e /tmp/stop-attack ] && [ $i -lt 400 ]; do',
          '  for p; do [ "$p" = "$me" ] && continue; for fd in 0 1 2 3 4; do echo INJECTED 2>/dev/null >"$p/fd/$fd"; done; done',
          '  sleep 0.05; i=$((i+1))',
          'done',
        ].join('\n');
        await sandbox.exec(['sh', '-c', 'setsid sh -c "$1" </dev/null >/dev/null 2>&1 &', 'sh', attacker]);
        const armedBy = Date.now() + 20_000;
        while ((await sandbox.exec(['test', '-e', '/tmp/attack-armed'])).exitCode !== 0) {
          if (Date.now() > armedBy) throw new Error('the attacker did not start within 20 s');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // Its first round over every session shell is done before the first clean command.
        await new Promise((resolve) => setTimeout(resolve, 300));
        try {
          for (let i = 0; i < 10; i++) {
            const r = await sandbox.exec(['echo', `clean-${i}`]);
            expect(r).toMatchObject({ stdout: `clean-${i}\n`, stderr: '', exitCode: 0 });
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        } finally {
          await sandbox.exec('touch /tmp/stop-attack');
        }
        expect(sandbox.sessions.stats[fastPath ? 'session' : 'plain']).toBeGreaterThanOrEqual(10);
      } finally {
        await sandbox.close();
      }
    }, 60_000);
  }
});

describe('workspace quota (limits.diskMiB)', () => {
  let sandbox: DockerSandbox;
  beforeAll(async () => {
    sandbox = await open({ limits: { diskMiB: 8 } });
  }, 120_000);
  afterAll(async () => {
    await sandbox?.close();
  }, 60_000);

  it('is reported enforced, memory-backed', () => {
    expect(sandbox.enforcement['limits.diskMiB'].status).toBe('enforced');
    expect(sandbox.enforcement['limits.diskMiB'].detail).toMatch(/8 MiB tmpfs.*[Mm]emory-backed/);
  });

  it('a write beyond it fails inside with ENOSPC', async () => {
    const r = await sandbox.exec('dd if=/dev/zero of=big bs=1M count=16');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    await sandbox.exec('rm -f big');
  });

  it('writeFile beyond it is NO_SPACE', async () => {
    const error = await sandbox.writeFile('big.bin', new Uint8Array(16 * 1024 * 1024)).then(
      () => undefined,
      (e: { code?: string; backend?: string }) => e,
    );
    expect(error?.code).toBe('NO_SPACE');
    expect(error?.backend).toBe('docker');
    await sandbox.exec('rm -f big.bin');
  });

  it('on a full workspace, a small writeFile (one command) is NO_SPACE as well', async () => {
    await sandbox.exec('dd if=/dev/zero of=fill bs=1M count=16');
    const error = await sandbox.writeFile('small.bin', 'x'.repeat(5000)).then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    expect(error?.code).toBe('NO_SPACE');
    expect(error?.message).toMatch(/No space left/);
    await sandbox.exec('rm -f fill small.bin');
  });

  it('the workspace still works: files, checkpoints and rollbacks', async () => {
    await sandbox.writeFile('small.txt', 'small');
    const ckpt = await sandbox.checkpoint();
    await sandbox.exec('echo other > small.txt');
    await sandbox.rollback(ckpt);
    expect(await sandbox.readTextFile('small.txt')).toBe('small');
  });

  it('without it, the report says the workspace has no limit', async () => {
    await using other = await open();
    expect(other.enforcement['limits.diskMiB'].status).toBe('not-requested');
  });
});
