/**
 * Property-based bad input for issue 18, shared by the backends' hostile-input tests: random and
 * hostile argv, env maps, stdin, options, paths, file data, signals, labels and checkpoint ids
 * thrown at the public API of one open sandbox. Every call must end, within a bound, in a result
 * or a typed AgentboxError with a string `code`: never a hang, a crash or an untyped exception.
 * Runs are kept short (numRuns modest) so a file stays well under 20 s.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentboxError, type SandboxBackend } from '@agentbox/core';
import fc from 'fast-check';
import { expect } from 'vitest';

/** How long one call may take before it counts as a hang. */
export const HANG_MS = 15_000;

// One seed for every run, so a failure in CI is the same failure here (AGENTBOX_FC_SEED picks
// another, to explore). A failure prints its seed and counterexample either way.
fc.configureGlobal({ seed: Number(process.env.AGENTBOX_FC_SEED ?? 20_261_206) });

/** Strings that have broken path, quoting and protocol code elsewhere. */
const nasty = [
  '',
  ' ',
  '.',
  '..',
  '../..',
  '../../../../../../etc/passwd',
  '/',
  '/etc/shadow',
  '/proc/self/environ',
  '~',
  '~root',
  '-rf',
  '--',
  '-',
  '$(touch pwned)',
  '`touch pwned`',
  "'; touch pwned; '",
  '"; touch pwned; "',
  '$HOME',
  '${IFS}',
  '*',
  'a\nb',
  'a\rb',
  'a\0b',
  '\0',
  '\u202e',
  '\uD800',
  '\uFFFF',
  'é',
  '💥',
  'x'.repeat(5000),
  'a/'.repeat(300),
  '%s%n%x',
  'con',
  'NUL',
];

export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...nasty) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

/** Anything a JavaScript caller could pass where a value is expected. */
export const anyValue = fc.oneof(
  hostileString,
  fc.constantFrom(undefined, null, true, false, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -0),
  fc.integer(),
  fc.double(),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
  fc.uint8Array({ maxLength: 64 }),
);

/** A relative or absolute path, or something that is not one at all. */
export const hostilePath = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.constantFrom('..', '.', 'a', '', '/', 'b c'), { maxLength: 6 })
      .map((p) => p.join('/')),
  },
  { weight: 1, arbitrary: anyValue },
);

/** Programs that are safe to run with any arguments (they only print, read stdin or exit). */
const program = fc.constantFrom(
  'printf',
  'echo',
  'cat',
  'true',
  'false',
  'env',
  'no-such-program-xyz',
  '',
  'sh',
);

export const hostileArgv = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.tuple(program, fc.array(hostileString, { maxLength: 4 })).map(([p, a]) => [p, ...a]),
  },
  { weight: 1, arbitrary: fc.constantFrom([], [''], ['\0']) },
  { weight: 1, arbitrary: anyValue },
);

export const hostileSignal = fc.oneof(
  fc.constantFrom(
    'SIGTERM',
    'SIGKILL',
    'SIGINT',
    'SIGHUP',
    'SIGUSR1',
    'SIGSTOP',
    'SIGCONT',
    'SIGPIPE',
    'TERM',
    'kill',
    '9',
  ),
  fc.integer({ min: -5, max: 70 }),
  anyValue,
);

export const hostileExecOptions = fc.oneof(
  { weight: 1, arbitrary: anyValue },
  {
    weight: 5,
    arbitrary: fc.record(
      {
        cwd: hostilePath,
        env: fc.oneof(fc.dictionary(hostileString, hostileString, { maxKeys: 4 }), anyValue),
        stdin: fc.oneof(hostileString, fc.uint8Array({ maxLength: 4096 }), anyValue),
        timeoutMs: fc.oneof(fc.integer({ min: -10, max: 3_000 }), anyValue),
        maxOutputBytes: fc.oneof(fc.integer({ min: -10, max: 1 << 20 }), anyValue),
        killGraceMs: fc.oneof(fc.integer({ min: -10, max: 500 }), anyValue),
        signal: fc.constantFrom(AbortSignal.abort(), AbortSignal.timeout(1), 'not a signal'),
        // A misspelt option name.
        timeoutMS: anyValue,
      },
      { requiredKeys: [] },
    ),
  },
);

/**
 * Run `call` and check how it ended: a value, or a typed AgentboxError with a string code, within
 * HANG_MS. Answers the error (or undefined). A synchronous throw counts like a rejection.
 */
export async function settles(what: string, call: () => unknown): Promise<AgentboxError | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    await Promise.race([Promise.resolve().then(call), hang]);
    return undefined;
  } catch (error) {
    if (error instanceof Error && error.message.endsWith(`within ${HANG_MS} ms`)) throw error;
    expect(error, `${what} threw an untyped ${describe(error)}`).toBeInstanceOf(AgentboxError);
    expect(typeof (error as AgentboxError).code).toBe('string');
    // The base class's code: an unexpected failure wrapped, not a classified one.
    expect((error as AgentboxError).code, `${what}: ${(error as Error).message}`).not.toBe('INTERNAL');
    return error as AgentboxError;
  } finally {
    clearTimeout(timer);
  }
}

/** A value as text for a failure message, whatever it is (a null-prototype object has no toString). */
export function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return typeof error;
}

/** Every entry under `dir` with its type, mode and (for files) content: what "nothing changed" compares. */
export function fingerprint(dir: string, skip: readonly string[] = []): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    if (skip.some((s) => path === s || path.startsWith(`${s}/`))) continue;
    const st = lstatSync(path);
    found[name] = `${st.mode.toString(8)} ${st.isFile() ? readFileSync(path).toString('base64') : ''}`;
  }
  return found;
}

/** The sandbox-level properties: execs, spawns and signals, file access, checkpoints. */
export async function sandboxProperties(
  sandbox: SandboxBackend,
  numRuns: number,
): Promise<Record<string, number>> {
  const codes: Record<string, number> = {};
  const count = (error: AgentboxError | undefined) => {
    const key = error?.code ?? 'result';
    codes[key] = (codes[key] ?? 0) + 1;
  };
  const sb = sandbox as unknown as Record<string, (...args: unknown[]) => unknown>;

  await fc.assert(
    fc.asyncProperty(hostileArgv, hostileExecOptions, async (argv, opts) => {
      count(await settles(`exec(${show(argv)})`, () => sb.exec!(argv, opts)));
    }),
    { numRuns },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(hostileString, fc.constantFrom('exit 3', 'kill -9 $$', 'echo hi >&2')),
      async (command) => {
        // A string is shell text: only hostile text that stays in the workdir (no `..`, no `/`).
        const text =
          typeof command === 'string' ? command.replaceAll('/', '_').replaceAll('..', '__') : command;
        count(await settles(`exec(${show(text)})`, () => sb.exec!(text, { timeoutMs: 5_000 })));
      },
    ),
    { numRuns },
  );
  await fc.assert(
    fc.asyncProperty(hostileSignal, async (signal) => {
      const handle = sandbox.spawn(['sleep', '20']);
      count(await settles(`kill(${show(signal)})`, () => handle.kill(signal as NodeJS.Signals)));
      await settles('kill(SIGKILL)', () => handle.kill('SIGKILL'));
      count(await settles('wait() after a kill', () => handle.wait()));
    }),
    { numRuns: Math.ceil(numRuns / 3) },
  );
  await fc.assert(
    fc.asyncProperty(
      hostilePath,
      fc.oneof(hostileString, fc.uint8Array({ maxLength: 2048 }), anyValue),
      anyValue,
      async (path, data, opts) => {
        count(await settles(`writeFile(${show(path)})`, () => sb.writeFile!(path, data, opts)));
        count(await settles(`readFile(${show(path)})`, () => sb.readFile!(path, opts)));
        count(await settles(`readTextFile(${show(path)})`, () => sb.readTextFile!(path)));
      },
    ),
    { numRuns },
  );
  await fc.assert(
    fc.asyncProperty(anyValue, anyValue, async (label, id) => {
      count(await settles(`checkpoint(${show(label)})`, () => sb.checkpoint!({ label })));
      count(await settles(`checkpoint(opts ${show(label)})`, () => sb.checkpoint!(label)));
      count(await settles(`rollback(${show(id)})`, () => sb.rollback!(id)));
      count(await settles(`deleteCheckpoint(${show(id)})`, () => sb.deleteCheckpoint!(id)));
    }),
    { numRuns: Math.ceil(numRuns / 3) },
  );
  // After all of it the sandbox still works and its store is whole.
  expect((await sandbox.exec(['printf', 'ok'])).stdout).toBe('ok');
  const report = await sandbox.verifyCheckpoints();
  expect(report.ok, show(report)).toBe(true);
  return codes;
}
