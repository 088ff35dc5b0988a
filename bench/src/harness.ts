/** Measure, then print one JSON line per figure with its baseline from the same run and the ratio. */

export interface Figure {
  bench: string;
  backend: string;
  value: number;
  unit: 'ms' | 'MB/s' | 'ops/s';
  baseline: string;
  baselineValue: number;
}

/** Print a figure. For ms, ratio = value / baseline (lower is better); for rates, baseline / value. */
export function report(figure: Figure): void {
  const ratio =
    figure.unit === 'ms' ? figure.value / figure.baselineValue : figure.baselineValue / figure.value;
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
