/** exec and spawn: exact bytes, exit codes, argv vs shell, env, cwd, stdin, concurrency, streaming. */
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import {
  concatBytes,
  eventually,
  expectBytes,
  expectError,
  MiB,
  marker,
  output,
  randomBytes,
  run,
  sha256,
  sleepers,
  waitForOutput,
  within,
} from '../helpers.js';

const utf8 = new TextEncoder();

/** The physical path of a directory as the sandbox sees it (`pwd -P` after cd). */
async function physical(sandbox: Parameters<typeof output>[0], dir: string): Promise<string> {
  return (await output(sandbox, ['sh', '-c', 'cd "$1" && pwd -P', 'sh', dir], { cwd: '/' })).trim();
}

export const execCases = defineGroup({
  name: 'exec',
  cases: [
    {
      id: 'exec.stdout-stderr-separate',
      title: 'stdout and stderr arrive separately and byte-exact',
      async run({ sandbox }) {
        const result = await run(
          sandbox,
          "printf 'out one\\nout two'; printf 'err one\\n' >&2; printf 'out three\\n'",
        );
        expect(result.stdout).toBe('out one\nout twoout three\n');
        expect(result.stderr).toBe('err one\n');
        expectBytes(result.stdoutBytes, utf8.encode('out one\nout twoout three\n'), 'stdoutBytes');
        expectBytes(result.stderrBytes, utf8.encode('err one\n'), 'stderrBytes');
      },
    },
    {
      id: 'exec.binary-output',
      title: 'binary output (NUL, 0xff, invalid UTF-8) is kept byte-exact in stdoutBytes',
      async run({ sandbox }) {
        const result = await run(sandbox, "printf 'a\\000b\\377\\200c\\n'; printf '\\000\\376' >&2");
        expectBytes(
          result.stdoutBytes,
          Uint8Array.from([0x61, 0, 0x62, 0xff, 0x80, 0x63, 0x0a]),
          'stdoutBytes',
        );
        expectBytes(result.stderrBytes, Uint8Array.from([0, 0xfe]), 'stderrBytes');
        // The text view replaces what is not UTF-8 instead of dropping it.
        expect(result.stdout).toBe('a\u0000b\ufffd\ufffdc\n');
      },
    },
    {
      id: 'exec.utf8-split',
      title: 'a multi-byte UTF-8 character split across output chunks decodes whole',
      async run({ sandbox }) {
        const chunks: Uint8Array[] = [];
        // '€' is e2 82 ac; the pause makes the first byte arrive as a chunk of its own.
        const result = await run(
          sandbox,
          "printf '\\342'; sleep 0.4; printf '\\202\\254 ok\\n'; printf '\\360\\237'; sleep 0.4; printf '\\230\\200\\n'",
          {
            onStdout: (c) => chunks.push(c),
          },
        );
        expect(result.stdout).toBe('€ ok\n😀\n');
        expect(result.stdout).not.toContain('\ufffd');
        expectBytes(concatBytes(chunks), result.stdoutBytes, 'chunks joined');
      },
    },
    {
      id: 'exec.exit-codes',
      title: 'exit codes are returned as results, not thrown',
      async run({ sandbox }) {
        expect((await sandbox.exec('exit 0')).exitCode).toBe(0);
        expect((await sandbox.exec('exit 3')).exitCode).toBe(3);
        expect((await sandbox.exec(['sh', '-c', 'exit 255'])).exitCode).toBe(255);
        const failed = await sandbox.exec(['false']);
        expect(failed.exitCode).toBe(1);
        expect(failed.signal).toBeNull();
      },
    },
    {
      id: 'exec.missing-program',
      title: 'a missing program is exit 127, as argv and through the shell',
      async run({ sandbox }) {
        const argv = await sandbox.exec(['agentbox-no-such-program-4711', '--flag']);
        expect(argv.exitCode).toBe(127);
        expect(argv.signal).toBeNull();
        const shell = await sandbox.exec('agentbox-no-such-program-4711 --flag');
        expect(shell.exitCode).toBe(127);
        expect(shell.stderr.length).toBeGreaterThan(0);
      },
    },
    {
      id: 'exec.not-executable',
      title: 'a file that is not executable is exit 126, as argv and through the shell',
      async run({ sandbox, dir }) {
        await run(sandbox, [
          'sh',
          '-c',
          'printf "#!/bin/sh\\necho ran\\n" > "$1" && chmod 644 "$1"',
          'sh',
          `${dir}/script`,
        ]);
        const argv = await sandbox.exec([`${dir}/script`]);
        expect(argv.exitCode).toBe(126);
        expect(argv.stdout).toBe('');
        const shell = await sandbox.exec('./script', { cwd: dir });
        expect(shell.exitCode).toBe(126);
      },
    },
    {
      id: 'exec.signal-exit',
      title: 'a process killed by a signal reports 128+n and the signal name',
      async run({ sandbox }) {
        const term = await sandbox.exec('kill -TERM $$; sleep 5');
        expect(term.exitCode).toBe(143);
        expect(term.signal).toBe('SIGTERM');
        const kill = await sandbox.exec('kill -KILL $$; sleep 5');
        expect(kill.exitCode).toBe(137);
        expect(kill.signal).toBe('SIGKILL');
        expect(kill.durationMs).toBeLessThan(4_000);
      },
    },
    {
      id: 'exec.argv-no-shell',
      title: 'an argv array runs without a shell: $HOME, globs, ; and | stay literal',
      async run({ sandbox }) {
        const args = ['$HOME', '*', '$(echo injected)', '`id`', ';', 'a|b', '&&', '~'];
        const result = await run(sandbox, ['printf', '%s\\n', ...args]);
        expect(result.stdout).toBe(`${args.join('\n')}\n`);
        expect(result.command).toEqual(['printf', '%s\\n', ...args]);
      },
    },
    {
      id: 'exec.shell-string',
      title: 'a string command runs through sh -c: variables, pipes and && work',
      async run({ sandbox }) {
        const cmd = 'X=abc; echo "$X$X" | tr a z && test -n "$HOME" && echo home-set';
        const result = await run(sandbox, cmd);
        expect(result.stdout).toBe('zbczbc\nhome-set\n');
        expect(result.command).toEqual(['sh', '-c', cmd]);
      },
    },
    {
      id: 'exec.argv-quoting',
      title: 'argv elements with quotes, newlines, unicode, spaces and empty strings arrive unchanged',
      async run({ sandbox }) {
        const args = [
          `it's "quoted"`,
          'line one\nline two\n',
          'ünïcødé ✓ 😀 日本語',
          '  leading and trailing  ',
          '',
          '-n',
          'back\\slash \\n not a newline',
          '\ttab',
        ];
        const result = await run(sandbox, ['sh', '-c', 'printf "%s\\0" "$@"', 'sh', ...args]);
        expect(result.stdout.split('\0').slice(0, -1)).toEqual(args);
      },
    },
    {
      id: 'exec.env-values',
      title: 'env values with spaces, quotes, unicode and empty strings arrive unchanged',
      async run({ sandbox }) {
        const env = {
          SPACED: '  with  spaces\tand tab ',
          QUOTED: `single ' double " dollar $HOME backtick \``,
          UNICODE: 'ünïcødé ✓ 日本語',
          MULTILINE: 'one\ntwo',
          EMPTY: '',
        };
        const result = await run(
          sandbox,
          'printf "%s\\0" "$SPACED" "$QUOTED" "$UNICODE" "$MULTILINE" "$EMPTY"',
          { env },
        );
        expect(result.stdout.split('\0').slice(0, -1)).toEqual(Object.values(env));
        // An empty value is still set.
        expect(await output(sandbox, 'env | grep -c "^EMPTY=$"', { env })).toBe('1\n');
      },
    },
    {
      id: 'exec.default-env',
      title: 'commands get PAGER=cat-style defaults, the caller can override them, and host secrets stay out',
      async run({ sandbox }) {
        const probe = `AGENTBOX_CONFORMANCE_PROBE_API_KEY`;
        const secret = `sk-conformance-${sha256(randomBytes(16)).slice(0, 24)}`;
        process.env[probe] = secret;
        try {
          const env = await output(sandbox, ['env']);
          const vars = new Map(
            env
              .split('\n')
              .filter((l) => l.includes('='))
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          );
          expect(vars.get('PAGER')).toBe('cat');
          expect(vars.get('GIT_PAGER')).toBe('cat');
          expect(vars.get('GIT_EDITOR')).toBeTruthy();
          expect(vars.get('PATH')).toMatch(/(^|:)\/bin(:|$)|(^|:)\/usr\/bin(:|$)/);
          expect(env).not.toContain(probe);
          expect(env).not.toContain(secret);
          // Whatever secrets the host really has must not leak either.
          for (const [name, value] of Object.entries(process.env)) {
            if (!/(_API_KEY|_TOKEN|_SECRET|PASSWORD)$/i.test(name) || !value || value.length < 8) continue;
            expect(env, `host variable ${name} is visible in the sandbox`).not.toContain(value);
          }
          const overridden = await output(sandbox, 'echo "$PAGER"', { env: { PAGER: 'less -R' } });
          expect(overridden).toBe('less -R\n');
        } finally {
          delete process.env[probe];
        }
      },
    },
    {
      id: 'exec.cwd-default',
      title: 'the default cwd is sandbox.workdir',
      async run({ sandbox }) {
        const here = (await output(sandbox, 'pwd -P')).trim();
        expect(here).toBe(await physical(sandbox, sandbox.workdir));
      },
    },
    {
      id: 'exec.cwd-relative',
      title: 'a relative cwd resolves against the workdir',
      async run({ sandbox, dir, rel }) {
        await run(sandbox, ['mkdir', '-p', `${dir}/sub dir`]);
        const here = (await output(sandbox, 'pwd -P', { cwd: `${rel}/sub dir` })).trim();
        expect(here).toBe(await physical(sandbox, `${dir}/sub dir`));
        expect(here).not.toBe(await physical(sandbox, sandbox.workdir));
      },
    },
    {
      id: 'exec.cwd-absolute',
      title: 'an absolute cwd is used as given',
      async run({ sandbox, dir }) {
        expect((await output(sandbox, 'pwd -P', { cwd: '/' })).trim()).toBe('/');
        expect((await output(sandbox, ['sh', '-c', 'pwd -P'], { cwd: dir })).trim()).toBe(
          await physical(sandbox, dir),
        );
      },
    },
    {
      id: 'exec.cwd-missing',
      title: 'a missing cwd is a NotFoundError, not a failed command',
      async run({ sandbox, dir }) {
        await expectError(sandbox, 'NOT_FOUND', () =>
          sandbox.exec('echo should-not-run', { cwd: `${dir}/no/such/dir` }),
        );
        await expectError(sandbox, 'NOT_FOUND', () =>
          sandbox.exec(['echo', 'x'], { cwd: 'conformance/no-such-dir' }),
        );
      },
    },
    {
      id: 'exec.stdin-text',
      title: 'text stdin reaches the command as UTF-8',
      needs: ['stdin'],
      async run({ sandbox }) {
        const text = 'hello\nwörld ✓ 😀\nno trailing newline';
        const result = await run(sandbox, ['cat'], { stdin: text });
        expect(result.stdout).toBe(text);
        expectBytes(result.stdoutBytes, utf8.encode(text));
      },
    },
    {
      id: 'exec.stdin-empty',
      title: 'empty stdin is an immediate EOF',
      needs: ['stdin'],
      async run({ sandbox, ms }) {
        for (const stdin of ['', new Uint8Array(0)]) {
          const result = await run(sandbox, 'cat; echo "rc=$?"', { stdin, timeoutMs: ms(10_000) });
          expect(result.stdout).toBe('rc=0\n');
        }
      },
    },
    {
      id: 'exec.stdin-binary',
      title: 'binary stdin (NUL bytes, invalid UTF-8) round-trips through cat',
      needs: ['stdin'],
      async run({ sandbox }) {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const input = concatBytes([
          all,
          Uint8Array.from([0, 0, 0xc3, 0x28, 0xff, 0xfe, 0xe2, 0x82]),
          all.reverse(),
        ]);
        const result = await run(sandbox, ['cat'], { stdin: input });
        expectBytes(result.stdoutBytes, input);
      },
    },
    {
      id: 'exec.stdin-large',
      title: '50 MiB of stdin arrives complete (byte count and sha256 checked inside the sandbox)',
      needs: ['stdin'],
      timeoutMs: 60_000,
      async run({ sandbox, dir }) {
        const input = randomBytes(50 * MiB);
        const result = await run(
          sandbox,
          'cat > big.bin && wc -c < big.bin && sha256sum < big.bin && rm big.bin',
          {
            stdin: input,
            cwd: dir,
          },
        );
        const [count, hash] = result.stdout.trim().split('\n');
        expect(Number(count?.trim())).toBe(input.length);
        expect(hash?.trim().split(/\s+/)[0]).toBe(sha256(input));
      },
    },
    {
      id: 'exec.stdin-stream',
      title: 'stdin given as an async iterable is streamed in order',
      needs: ['stdin'],
      async run({ sandbox }) {
        const parts = Array.from({ length: 64 }, (_, i) => randomBytes(1 + i * 997));
        async function* chunks() {
          for (const part of parts) {
            await Promise.resolve();
            yield part;
          }
        }
        const result = await run(sandbox, ['cat'], { stdin: chunks() });
        expectBytes(result.stdoutBytes, concatBytes(parts));
      },
    },
    {
      id: 'exec.stdin-closed-by-default',
      title: 'without stdin, a command reading stdin sees EOF at once instead of hanging',
      async run({ sandbox, ms }) {
        const result = await run(sandbox, 'cat; read line; echo "read-rc=$?"', { timeoutMs: ms(10_000) });
        expect(result.stdout).toBe('read-rc=1\n');
        expect(result.durationMs).toBeLessThan(ms(5_000));
      },
    },
    {
      id: 'exec.argv-large',
      title: 'about 1 MiB of argv (split across arguments) arrives complete',
      async run({ sandbox }) {
        // A single argument is limited to 128 KiB by Linux, so 16 arguments of 64 KiB.
        const args = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(64 * 1024));
        const joined = args.join('');
        const result = await run(sandbox, [
          'sh',
          '-c',
          'printf %s "$@" | wc -c; printf %s "$@" | sha256sum',
          'sh',
          ...args,
        ]);
        const [count, hash] = result.stdout.trim().split('\n');
        expect(Number(count?.trim())).toBe(MiB);
        expect(hash?.trim().split(/\s+/)[0]).toBe(sha256(joined));
      },
    },
    {
      id: 'exec.concurrent',
      title: 'eight concurrent execs in one sandbox each get their own stdin, env and output, in parallel',
      needs: ['stdin'],
      async run({ sandbox, ms }) {
        const started = Date.now();
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            sandbox.exec('read line; sleep 1; echo "$N:$line"; echo "err$N" >&2', {
              stdin: `payload-${i}\n`,
              env: { N: String(i) },
            }),
          ),
        );
        const elapsed = Date.now() - started;
        results.forEach((r, i) => {
          expect(r.exitCode).toBe(0);
          expect(r.stdout).toBe(`${i}:payload-${i}\n`);
          expect(r.stderr).toBe(`err${i}\n`);
        });
        // Run one after another they would take at least 8 s.
        expect(elapsed).toBeLessThan(ms(6_000));
      },
    },
    {
      id: 'exec.output-callbacks',
      title: 'onStdout/onStderr chunks join to exactly the result',
      async run({ sandbox }) {
        const out: Uint8Array[] = [];
        const err: Uint8Array[] = [];
        const result = await run(
          sandbox,
          'i=0; while [ $i -lt 300 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done; head -c 300000 /dev/zero',
          { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c) },
        );
        expect(result.stdoutBytes.length).toBeGreaterThan(300_000);
        expectBytes(concatBytes(out), result.stdoutBytes, 'stdout chunks');
        expectBytes(concatBytes(err), result.stderrBytes, 'stderr chunks');
      },
    },
    {
      id: 'exec.spawn-streaming',
      title: 'spawn streams: the first chunk arrives before the process ends',
      needs: ['spawn'],
      async run({ sandbox, ms }) {
        const started = Date.now();
        const handle = sandbox.spawn('echo first; sleep 2; echo second');
        // Start reading before asking for the result.
        const iterator = handle.stdout[Symbol.asyncIterator]();
        const firstChunk = iterator.next();
        let ended = false;
        const waited = handle.wait().finally(() => {
          ended = true;
        });
        const first = await firstChunk;
        const firstAt = Date.now() - started;
        expect(first.done).toBe(false);
        expect(new TextDecoder().decode(first.value)).toContain('first');
        expect(ended).toBe(false);
        expect(firstAt).toBeLessThan(ms(1_800));
        const rest: Uint8Array[] = [first.value!];
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          rest.push(next.value);
        }
        const result = await waited;
        expect(result.exitCode).toBe(0);
        expect(new TextDecoder().decode(concatBytes(rest))).toBe('first\nsecond\n');
      },
    },
    {
      id: 'exec.spawn-chunks-join',
      title: 'spawn stdout and stderr chunks join to exactly the final result',
      needs: ['spawn'],
      async run({ sandbox }) {
        const handle = sandbox.spawn(
          'i=0; while [ $i -lt 500 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf "\\342\\202"; printf "\\254"',
        );
        const collect = async (stream: AsyncIterable<Uint8Array>) => {
          const chunks: Uint8Array[] = [];
          for await (const c of stream) chunks.push(c);
          return concatBytes(chunks);
        };
        const [out, err, result] = await Promise.all([
          collect(handle.stdout),
          collect(handle.stderr),
          handle.wait(),
        ]);
        expectBytes(out, result.stdoutBytes, 'stdout chunks');
        expectBytes(err, result.stderrBytes, 'stderr chunks');
        expect(result.stdout.endsWith('out 499\n€')).toBe(true);
        expect(result.stderr.split('\n')).toHaveLength(501);
      },
    },
    {
      id: 'exec.spawn-stdin',
      title: 'spawn: writeStdin talks to a running command and closeStdin ends its input',
      needs: ['spawn', 'stdin'],
      async run({ sandbox }) {
        const handle = sandbox.spawn('while read line; do echo "got:$line"; done; echo eof');
        const iterator = handle.stdout[Symbol.asyncIterator]();
        const decoder = new TextDecoder();
        let seen = '';
        const readUntil = async (text: string) => {
          while (!seen.includes(text)) {
            const next = await within(iterator.next(), 10_000, `output "${text}"`);
            if (next.done) break;
            seen += decoder.decode(next.value, { stream: true });
          }
        };
        await handle.writeStdin('one\n');
        await readUntil('got:one\n');
        expect(seen).toBe('got:one\n');
        await handle.writeStdin(utf8.encode('twö\n'));
        await readUntil('got:twö\n');
        await handle.closeStdin();
        await readUntil('eof\n');
        const result = await handle.wait();
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toBe('got:one\ngot:twö\neof\n');
      },
    },
    {
      id: 'exec.spawn-kill',
      title: 'spawn: kill() ends the whole tree and wait() reports the signal',
      needs: ['spawn', 'kill'],
      async run({ sandbox, ms }) {
        const mark = marker();
        const ready = waitForOutput('ready');
        const handle = sandbox.spawn(`sleep ${mark} & echo ready; wait`, { onStdout: ready.onChunk });
        await within(ready.seen, ms(10_000), 'the spawned command');
        expect(await eventually(async () => (await sleepers(sandbox, mark)).length === 1, ms(3_000))).toBe(
          true,
        );
        await handle.kill();
        const result = await within(handle.wait(), ms(10_000), 'wait() after kill()');
        expect(
          result.exitCode === 143 || result.signal === 'SIGTERM',
          `exit ${result.exitCode}, signal ${result.signal}`,
        ).toBe(true);
        expect(await eventually(async () => (await sleepers(sandbox, mark)).length === 0, ms(3_000))).toBe(
          true,
        );
      },
    },
  ],
});
