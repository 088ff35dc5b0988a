/** Measure, then print one JSON line per figure with its baseline from the same run and the ratio. */

import type { Duplex } from 'node:stream';

export interface Figure {
  bench: string;
  backend: string;
  value: number;
  unit: 'ms' | 'MB/s' | 'ops/s' | 'MiB';
  baseline: string;
  baselineValue: number;
}

/** Print a figure. For ms and MiB, ratio = value / baseline (lower is better); for rates, baseline / value. */
export function report(figure: Figure): void {
  const ratio =
    figure.unit === 'ms' || figure.unit === 'MiB'
      ? figure.value / figure.baselineValue
      : figure.baselineValue / figure.value;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  console.log(
    JSON.stringify({
      ...figure,
      value: round(figure.value),
      baselineValue: round(figure.baselineValue),
      ratio: round(ratio),
    }),
  );
}

/** Median wall time of `fn` in ms, after warm-up runs. */
export async function medianMs(fn: () => Promise<unknown>, { runs = 30, warmup = 3 } = {}): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Time one run of `fn` in ms. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export function skip(bench: string, reason: string): void {
  console.error(`skipped ${bench}: ${reason}`);
}

/** Round trips over a stream already open to a shell (or `cat`) in the sandbox. */
export interface Rounds {
  /** Write `line(n)` and wait until `done-n` comes back. */
  round(): Promise<void>;
  close(): void;
}

/**
 * Rounds over an open stream, with no framing of ours: each writes `line(n)`, which must make
 * the other side print `done-n`, and waits for it. The raw bytes are searched, so a stream with
 * frame headers (docker without a TTY) works as long as `done-n` fits in one frame.
 */
export function rounds(stream: Duplex, line: (n: number) => string): Rounds {
  let seen = '';
  let waiting: { token: string; resolve: () => void } | undefined;
  stream.on('data', (chunk: Buffer) => {
    seen += chunk.toString('latin1');
    if (waiting && seen.includes(waiting.token)) {
      seen = '';
      const { resolve } = waiting;
      waiting = undefined;
      resolve();
    }
  });
  let n = 0;
  return {
    round: () =>
      new Promise<void>((resolve) => {
        n += 1;
        waiting = { token: `done-${n}\n`, resolve };
        stream.write(line(n));
      }),
    close: () => stream.end(),
  };
}
