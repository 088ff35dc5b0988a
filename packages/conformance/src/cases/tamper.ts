/**
 * Tamper: the sandbox's own commands (the agent) attack what the library promises around them:
 * checkpoints they could redirect or forge, another sandbox's files, processes that outlive
 * their command, output that lands in a later command's result, argv read as options.
 * Races are run several rounds so that an unprotected backend loses at least one of them.
 */
import type { SandboxBackend } from '@agentbox/core';
import { expect } from 'vitest';
import { type CaseContext, defineGroup } from '../case.js';
import { eventually, marker, output, randomBytes, run, sha256, sleep, sleepers } from '../helpers.js';

/** A directory the case owns outside the tree that checkpoints keep, for the attacker's stop flag. */
const STOP_DIR = '/tmp';

/** Where a backend might keep its checkpoint store, as the agent would guess it. */
function storeGuesses(sandbox: SandboxBackend): string[] {
  return [
    '/store/checkpoints',
    `${sandbox.workdir}/../checkpoints`,
    `${sandbox.workdir}/../store/checkpoints`,
  ];
}

/**
 * Start a detached attacker (its own session, streams closed) that runs `body` in a loop in
 * `dir` until it is stopped or has run for `seconds`. Returns the function that stops it.
 */
async function startAttacker(
  sandbox: SandboxBackend,
  dir: string,
  body: string,
  seconds = 60,
): Promise<() => Promise<void>> {
  const stop = `${STOP_DIR}/agentbox-tamper-stop-${sha256(randomBytes(8)).slice(0, 12)}`;
  // A tight loop ($i counts iterations for the body); the clock is read every 1,000 rounds only.
  const loop = `cd "$1" || exit 1; end=$(( $(date +%s) + ${seconds} )); i=0; while [ ! -e "$2" ]; do ${body}; i=$((i+1)); if [ $((i % 1000)) = 0 ] && [ "$(date +%s)" -ge "$end" ]; then break; fi; done; : > "$2.done"`;
  await run(sandbox, [
    'sh',
    '-c',
    'setsid sh -c "$3" sh "$1" "$2" </dev/null >/dev/null 2>&1 &',
    'sh',
    dir,
    stop,
    loop,
  ]);
  // Stopped once it says so (or after 30 s), never mid-iteration.
  return async () => {
    await sandbox
      .exec([
        'sh',
        '-c',
        ': > "$1"; i=0; while [ ! -e "$1.done" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; rm -f "$1" "$1.done"',
        'sh',
        stop,
      ])
      .catch(() => {});
  };
}

/** A forged checkpoint, in the layout of core's exec store. */
const FORGED_ID = 'ckpt-forged-0badf00d';
/** Directories that each hold the forged checkpoint: each is one more chance to win a race. */
const BAITS = 60;
function forgeScript(): string {
  const info = JSON.stringify({
    id: FORGED_ID,
    label: 'forged',
    createdAt: '2020-01-01T00:00:00.000Z',
    entries: 1,
    bytesStored: 0,
  });
  const manifest = JSON.stringify({
    version: 2,
    info: JSON.parse(info),
    entries: [{ path: 'owned', type: 'file', mode: 420, uid: 0, gid: 0, size: 0, mtimeSec: 0 }],
  });
  return [
    'mkdir -p d',
    `printf '%s' '${info}' > d/${FORGED_ID}.info`,
    `printf '%s' '${manifest}' > d/${FORGED_ID}.manifest`,
    `n=0; while [ $n -lt ${BAITS} ]; do cp -r d d$n; n=$((n+1)); done`,
  ].join(' && ');
}

async function expectOnlyOwnCheckpoints(sandbox: SandboxBackend, own: readonly string[]): Promise<void> {
  const ids = (await sandbox.listCheckpoints()).map((c) => c.id);
  expect(ids).not.toContain(FORGED_ID);
  expect(ids.filter((id) => !own.includes(id))).toEqual([]);
}

/** Kill, by pid, the `sleep <mark>` processes this case started and failed to see die (no leak on failure). */
async function killSleepers(sandbox: SandboxBackend, mark: string): Promise<void> {
  const pids = (await sleepers(sandbox, mark).catch(() => [])).map((line) => line.trim().split(/\s+/)[0]!);
  if (pids.length > 0) await sandbox.exec(['kill', '-9', ...pids]).catch(() => {});
}

/** Is a process running exactly `sleep <mark>` still there? Polled a little, since kills take a moment. */
async function goneSoon(ctx: CaseContext, sandbox: SandboxBackend, mark: string): Promise<boolean> {
  return eventually(async () => (await sleepers(sandbox, mark)).length === 0, ctx.ms(3_000));
}

/** The double-fork case's body: the escape dies at the timeout, or (promised) at close. */
async function doubleFork(
  ctx: CaseContext,
  sandbox: SandboxBackend,
  mark: string,
  promise: 'timeout' | 'close',
): Promise<void> {
  const { ms } = ctx;
  const code = await sandbox
    .exec(`(setsid sh -c 'exec sleep ${mark}' </dev/null >/dev/null 2>&1 &); sleep 30`, {
      timeoutMs: ms(2_000),
    })
    .then(
      () => undefined,
      (e: { code?: string }) => e.code,
    );
  expect(code).toBe('TIMEOUT');
  if (promise === 'timeout') {
    expect(await goneSoon(ctx, sandbox, mark)).toBe(true);
    return;
  }
  // Control: the escape is alive now, and the backend promised only close.
  expect((await sleepers(sandbox, mark)).length).toBe(1);
  await sandbox.close();
  if (ctx.options.isolatesProcesses === false) expect(await goneSoon(ctx, ctx.sandbox, mark)).toBe(true);
}

export const tamperCases = defineGroup({
  name: 'tamper',
  cases: [
    {
      id: 'tamper.symlink-swap-rollback',
      title:
        'a rollback cannot be redirected into the checkpoint store by a directory swapped for a symlink while it runs',
      timeoutMs: 180_000,
      async run(ctx) {
        const { sandbox, dir } = ctx;
        if (!sandbox.capabilities.checkpoints) ctx.skip('the backend keeps no checkpoints');
        await run(sandbox, ['sh', '-c', `cd "$1" && ${forgeScript()}`, 'sh', dir]);
        const good = await sandbox.checkpoint({ label: 'known-good' });
        const own = [...(await sandbox.listCheckpoints()).map((c) => c.id)];
        const guesses = storeGuesses(sandbox);
        // Each bait directory the restore recreates is replaced at once by a link to a guessed store.
        const swap = Array.from(
          { length: BAITS },
          (_, n) =>
            `{ [ -d d${n} ] && [ ! -L d${n} ] && mv d${n} g${n}-$i && ln -s '${guesses[n % guesses.length]}' d${n}; } 2>/dev/null`,
        ).join('; ');
        for (let round = 0; round < 3; round++) {
          // The restore must recreate the baits. (One that lost the race may leave entries the
          // sandbox user cannot delete: the next restore removes them.)
          await sandbox.exec(['sh', '-c', 'cd "$1" && rm -rf d* g* 2>/dev/null; exit 0', 'sh', dir]);
          const stop = await startAttacker(sandbox, dir, swap);
          try {
            await sandbox.rollback(good).catch(() => {});
          } finally {
            await stop();
          }
          await expectOnlyOwnCheckpoints(sandbox, own);
        }
        // The store is intact: with nobody racing, the known-good checkpoint comes back whole.
        await sandbox.rollback(good);
        expect(await sandbox.readTextFile(`${dir}/d${BAITS - 1}/${FORGED_ID}.info`)).toContain('forged');
        await expectOnlyOwnCheckpoints(sandbox, own);
      },
    },
    {
      id: 'tamper.symlink-swap-checkpoint',
      title:
        'a checkpoint keeps only what the tree holds, even while a directory is swapped for a symlink to outside it',
      timeoutMs: 180_000,
      async run(ctx) {
        const { sandbox, dir } = ctx;
        if (!sandbox.capabilities.checkpoints) ctx.skip('the backend keeps no checkpoints');
        // Names that exist in /etc wherever the checkpoint's reader runs; each holds "mine".
        const names = ['passwd', 'group', 'hosts', 'hostname', 'resolv.conf', 'shadow', 'os-release'];
        await run(sandbox, [
          'sh',
          '-c',
          'cd "$1" && mkdir d && shift && for n; do echo mine > "d/$n"; done && i=0 && while [ $i -lt 300 ]; do mkdir d/e$i; i=$((i+1)); done',
          'sh',
          dir,
          ...names,
        ]);
        const stop = await startAttacker(sandbox, dir, '{ mv d x; ln -s /etc d; rm d; mv x d; } 2>/dev/null');
        const taken = [];
        try {
          for (let round = 0; round < 4; round++) taken.push(await sandbox.checkpoint());
        } finally {
          await stop();
        }
        for (const ckpt of taken) {
          await sandbox.rollback(ckpt);
          // Either d was a directory (then only our files) or, caught mid-swap, a link or missing.
          const seen = await output(sandbox, [
            'sh',
            '-c',
            'cd "$1"; for p in d x; do [ -d "$p" ] && [ ! -L "$p" ] && for f in "$p"/*; do [ -f "$f" ] && printf "%s=%s\\n" "$f" "$(head -c 40 "$f" | tr "\\n" " ")"; done; done; exit 0',
            'sh',
            dir,
          ]);
          for (const line of seen.split('\n').filter(Boolean)) expect(line).toMatch(/=mine $/);
        }
      },
    },
    {
      id: 'tamper.forged-manifest',
      title: 'checkpoint files the agent writes into its tree never appear in listCheckpoints',
      async run(ctx) {
        const { sandbox, dir } = ctx;
        if (!sandbox.capabilities.checkpoints) ctx.skip('the backend keeps no checkpoints');
        const before = (await sandbox.listCheckpoints()).map((c) => c.id);
        await run(sandbox, ['sh', '-c', `cd "$1" && ${forgeScript()}`, 'sh', dir]);
        // Also where a store beside the workspace would be, if the agent can write there.
        for (const guess of storeGuesses(sandbox))
          await sandbox.exec([
            'sh',
            '-c',
            'mkdir -p "$1" 2>/dev/null && cp "$2"/d/* "$1"/ 2>/dev/null; exit 0',
            'sh',
            guess,
            dir,
          ]);
        const made = await sandbox.checkpoint();
        await expectOnlyOwnCheckpoints(sandbox, [...before, made.id]);
      },
    },
    {
      id: 'tamper.cross-sandbox',
      title: "one sandbox can neither read nor write another's files, by any path it can guess",
      async run(ctx) {
        const { sandbox } = ctx;
        const other = await ctx.open();
        const secret = `secret-${sha256(randomBytes(8))}`;
        const name = `tamper-${sha256(randomBytes(6)).slice(0, 12)}.txt`;
        await other.writeFile(name, secret);
        const guesses = [
          `${other.workdir}/${name}`,
          `${sandbox.workdir}/../${other.id}/workspace/${name}`,
          `${sandbox.workdir}/../../${other.id}/workspace/${name}`,
          `${sandbox.workdir}/../${other.id}/${name}`,
        ];
        for (const path of guesses) {
          const seen = await sandbox.exec(['sh', '-c', 'cat -- "$1" 2>/dev/null; exit 0', 'sh', path]);
          expect(seen.stdout, path).not.toContain(secret);
          const read = await sandbox.readTextFile(path).catch(() => '');
          expect(read, path).not.toContain(secret);
          await sandbox.exec(['sh', '-c', 'echo overwritten > "$1" 2>/dev/null; exit 0', 'sh', path]);
        }
        // A search of everything the sandbox can see finds nothing either.
        const found = await sandbox.exec([
          'sh',
          '-c',
          'find / -xdev -name "$1" 2>/dev/null | head -5; exit 0',
          'sh',
          name,
        ]);
        const mine = found.stdout.split('\n').filter((p) => p && !p.startsWith(`${sandbox.workdir}/`));
        expect(mine).toEqual([]);
        expect(await other.readTextFile(name)).toBe(secret);
      },
    },
    {
      id: 'tamper.setsid-escape-timeout',
      title:
        'a timeout kills a process the command started in a session of its own that still holds its output',
      async run(ctx) {
        const { sandbox, ms } = ctx;
        const mark = marker();
        try {
          const error = await sandbox
            .exec(`setsid sh -c 'exec sleep ${mark}' & sleep 30`, { timeoutMs: ms(2_000) })
            .then(
              () => undefined,
              (e: { code?: string }) => e.code,
            );
          expect(error).toBe('TIMEOUT');
          expect(await goneSoon(ctx, sandbox, mark)).toBe(true);
        } finally {
          await killSleepers(sandbox, mark);
        }
      },
    },
    {
      id: 'tamper.double-fork-escape',
      title:
        'a double-forked, setsid process that let go of the output dies at the timeout (or at close, where the backend says so)',
      async run(ctx) {
        const promise = ctx.options.escapedProcessesDie ?? 'timeout';
        // Its own sandbox: where escapes die only at close, closing it is part of the case.
        const sandbox = promise === 'close' ? await ctx.open() : ctx.sandbox;
        const mark = marker();
        try {
          await doubleFork(ctx, sandbox, mark, promise);
        } finally {
          await killSleepers(sandbox, mark);
          if (ctx.options.isolatesProcesses === false) await killSleepers(ctx.sandbox, mark);
        }
      },
    },
    {
      id: 'tamper.output-injection',
      title: "output of a background process never appears in a later command's result",
      timeoutMs: 60_000,
      async run(ctx) {
        const { sandbox, ms } = ctx;
        const stop = `${STOP_DIR}/agentbox-tamper-stop-${sha256(randomBytes(8)).slice(0, 12)}`;
        // It leaves the command's process group and keeps writing to the command's output: the
        // command may wait for it (as a pipe would) until its timeout, or return at once; either
        // way its lines must stay its own.
        await sandbox
          .exec(
            // Bounded (about 30 s) even if nothing ever stops it.
            `setsid sh -c 'i=0; while [ ! -e ${stop} ] && [ $i -lt 600 ]; do echo INJECTED; echo INJECTED >&2; sleep 0.05; i=$((i+1)); done' & sleep 0.3`,
            { timeoutMs: ms(2_000) },
          )
          .catch(() => undefined);
        try {
          for (let i = 0; i < 10; i++) {
            const r = await sandbox.exec(['echo', `clean-${i}`]);
            expect(r.stdout).toBe(`clean-${i}\n`);
            expect(r.stderr).toBe('');
            await sleep(60);
          }
        } finally {
          // It stops on its own once this file exists (no kill by name).
          await sandbox.exec(['sh', '-c', ': > "$1"; sleep 0.3; rm -f "$1"', 'sh', stop]).catch(() => {});
        }
      },
    },
    {
      id: 'tamper.session-pipe-injection',
      title:
        "a process that opens another process's fds through /proc never writes into a later command's result or request",
      timeoutMs: 60_000,
      async run(ctx) {
        const { sandbox, ms } = ctx;
        // It writes into every process it can see: only where that is the sandbox's own processes.
        if (sandbox.enforcement.isolation?.status !== 'enforced' || ctx.options.isolatesProcesses === false)
          ctx.skip(
            "the sandbox's processes are not isolated from the host's: the attacker would write into processes outside the sandbox",
          );
        const stop = `${STOP_DIR}/agentbox-tamper-stop-${sha256(randomBytes(8)).slice(0, 12)}`;
        // Warm: the processes that serve commands (session shells, runners) exist before it looks.
        for (let i = 0; i < 3; i++) await sandbox.exec(['true']);
        // It takes every process that runs now (bar itself) and writes into each one's fds 0-4
        // through /proc, over and over: a long-lived process that holds a command channel (a
        // session runner, its waiting shell, a wrapper) would carry the bytes into later results.
        // It says when it has its list (the armed file), and the clean commands start only then:
        // a command running when it lists is an ordinary process of the sandbox user, whose own
        // output any process of that user may write into while it runs (not what this case is about).
        const armed = `${stop}-armed`;
        const attacker = [
          `me=/proc/$$; set -- /proc/[0-9]*; i=0; : > ${armed}`,
          `while [ ! -e ${stop} ] && [ $i -lt 400 ]; do`,
          '  for p; do [ "$p" = "$me" ] && continue; for fd in 0 1 2 3 4; do echo INJECTED 2>/dev/null >"$p/fd/$fd"; done; done',
          '  sleep 0.05; i=$((i+1))',
          'done',
        ].join('\n');
        await sandbox.exec(['sh', '-c', 'setsid sh -c "$1" </dev/null >/dev/null 2>&1 &', 'sh', attacker], {
          timeoutMs: ms(10_000),
        });
        try {
          const by = Date.now() + ms(20_000);
          while ((await sandbox.exec(['test', '-e', armed])).exitCode !== 0) {
            if (Date.now() > by) throw new Error('the attacker did not start');
            await sleep(50);
          }
          for (let i = 0; i < 10; i++) {
            const r = await sandbox.exec(['echo', `clean-${i}`]);
            expect(r.stdout).toBe(`clean-${i}\n`);
            expect(r.stderr).toBe('');
            await sleep(100);
          }
        } finally {
          await sandbox
            .exec(['sh', '-c', ': > "$1"; sleep 0.3; rm -f "$1" "$2"', 'sh', stop, armed])
            .catch(() => {});
        }
      },
    },
    {
      id: 'tamper.argv-dash',
      title: 'an argv beginning with "-" is a command name, never an option of the wrapper (exit 127)',
      async run({ sandbox }) {
        for (const argv of [['-c', 'id'], ['--', 'id'], ['-h']]) {
          const r = await sandbox.exec(argv);
          expect(r.exitCode, argv.join(' ')).toBe(127);
          expect(r.stdout, argv.join(' ')).not.toContain('uid=');
        }
      },
    },
  ],
});
