/** Output limits: capped per stream, head and tail kept, flagged, counted, and memory stays bounded. */
import { DEFAULT_MAX_OUTPUT_BYTES, type TimeoutError } from '@agentbox/core';
import { expect } from 'vitest';
import { defineGroup } from '../case.js';
import { expectError, MiB, marker, run } from '../helpers.js';

/** What `noisy` prints: a begin marker, `lines` numbered lines, an end marker. */
function noisy(lines: number): { script: string; text: string } {
  let text = 'BEGIN-MARK\n';
  for (let i = 0; i < lines; i++) text += `middle-${i}\n`;
  text += 'END-MARK\n';
  return {
    script: `echo BEGIN-MARK; i=0; while [ $i -lt ${lines} ]; do echo "middle-$i"; i=$((i+1)); done; echo END-MARK`,
    text,
  };
}

export const outputCases = defineGroup({
  name: 'output',
  cases: [
    {
      id: 'output.head-and-tail',
      title: 'over maxOutputBytes, stdout keeps its head and tail, says it was cut, and counts every byte',
      async run({ sandbox }) {
        const { script, text } = noisy(5_000);
        const result = await run(sandbox, `${script}; echo small >&2`, { maxOutputBytes: 1_000 });
        expect(result.stdout.startsWith('BEGIN-MARK\nmiddle-0\n')).toBe(true);
        expect(result.stdout.endsWith('middle-4999\nEND-MARK\n')).toBe(true);
        expect(result.stdout).not.toContain('middle-2500\n');
        expect(result.stdoutBytes.length).toBeLessThanOrEqual(1_000);
        expect(result.stdoutBytes.length).toBeGreaterThan(500);
        expect(result.truncated).toEqual({ stdout: true, stderr: false });
        expect(result.totalBytes).toEqual({ stdout: text.length, stderr: 6 });
        expect(result.stderr).toBe('small\n');
      },
    },
    {
      id: 'output.stderr-cap',
      title: 'stderr is capped on its own: stdout untouched, truncated.stderr true',
      async run({ sandbox }) {
        const { script, text } = noisy(3_000);
        const result = await run(sandbox, `(${script}) >&2; echo small`, { maxOutputBytes: 2_000 });
        expect(result.stdout).toBe('small\n');
        expect(result.stderr.startsWith('BEGIN-MARK\n')).toBe(true);
        expect(result.stderr.endsWith('END-MARK\n')).toBe(true);
        expect(result.stderrBytes.length).toBeLessThanOrEqual(2_000);
        expect(result.truncated).toEqual({ stdout: false, stderr: true });
        expect(result.totalBytes).toEqual({ stdout: 6, stderr: text.length });
      },
    },
    {
      id: 'output.exact-cap',
      title: 'output of exactly maxOutputBytes is whole and not flagged; one byte more is',
      async run({ sandbox }) {
        const exact = await run(sandbox, "head -c 100 /dev/zero | tr '\\000' a", { maxOutputBytes: 100 });
        expect(exact.stdout).toBe('a'.repeat(100));
        expect(exact.truncated.stdout).toBe(false);
        const over = await run(sandbox, "head -c 101 /dev/zero | tr '\\000' a", { maxOutputBytes: 100 });
        expect(over.truncated.stdout).toBe(true);
        expect(over.totalBytes.stdout).toBe(101);
        expect(over.stdoutBytes.length).toBeLessThanOrEqual(100);
      },
    },
    {
      id: 'output.large-bounded',
      title: '200 MiB of output leaves the result at the default cap and memory bounded',
      timeoutMs: 90_000,
      async run({ sandbox }) {
        const total = 200 * MiB;
        const before = process.memoryUsage().rss;
        let peak = before;
        const sampler = setInterval(() => {
          peak = Math.max(peak, process.memoryUsage().rss);
        }, 25);
        let result: Awaited<ReturnType<typeof run>>;
        try {
          result = await run(sandbox, `head -c ${total} /dev/zero`);
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, process.memoryUsage().rss);
        expect(result.totalBytes.stdout).toBe(total);
        expect(result.truncated.stdout).toBe(true);
        expect(result.stdoutBytes.length).toBe(DEFAULT_MAX_OUTPUT_BYTES);
        expect(result.stdoutBytes.every((b) => b === 0)).toBe(true);
        // Keeping it all would take 200 MiB or more; the cap plus transport buffers takes far less.
        expect(peak - before, `rss grew by ${Math.round((peak - before) / MiB)} MiB`).toBeLessThan(120 * MiB);
      },
    },
    {
      id: 'output.callbacks-uncapped',
      title: 'onStdout sees every byte even when the result is capped',
      async run({ sandbox }) {
        let seen = 0;
        const result = await run(sandbox, 'head -c 1048576 /dev/zero', {
          maxOutputBytes: 1_000,
          onStdout: (c) => {
            seen += c.length;
          },
        });
        expect(seen).toBe(MiB);
        expect(result.totalBytes.stdout).toBe(MiB);
        expect(result.stdoutBytes.length).toBeLessThanOrEqual(1_000);
      },
    },
    {
      id: 'output.partial-capped',
      title: 'the partial output of a timeout is capped the same way (head and tail)',
      async run({ sandbox, ms }) {
        const { script } = noisy(5_000);
        const error = (await expectError(sandbox, 'TIMEOUT', () =>
          sandbox.exec(`${script}; sleep ${marker()}`, { timeoutMs: ms(1_500), maxOutputBytes: 1_000 }),
        )) as TimeoutError;
        expect(error.partial.stdoutBytes.length).toBeLessThanOrEqual(1_000);
        expect(error.partial.stdout.startsWith('BEGIN-MARK\n')).toBe(true);
        expect(error.partial.stdout.endsWith('END-MARK\n')).toBe(true);
      },
    },
  ],
});
