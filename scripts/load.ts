/**
 * The load run of issue 18, shared by the docker and ssh load tests and the `load` benchmark
 * group: many sandboxes at once, each with several callers running execs concurrently. Every
 * exec sends its own random bytes (NUL and invalid UTF-8 included) as stdin and gets them back
 * on stdout, with its own tag on stderr, so a result that is not byte-exact, or that belongs to
 * another exec, is caught. Reports throughput and latency percentiles.
 */
import { randomBytes } from 'node:crypto';
import type { ExecResult, SandboxBackend } from '@agentbox/core';

export interface LoadShape {
  /** Sandboxes open at once. */
  sandboxes: number;
  /** Callers per sandbox, each running its execs one after another. */
  concurrent: number;
  /** Execs per caller. */
  rounds: number;
  /** Bytes of stdin (and so of stdout) per exec. */
  bytes: number;
}

export interface LoadReport extends LoadShape {
  /** Execs that returned a result (failures excluded). */
  execs: number;
  wallMs: number;
  execsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** One line per exec whose result was not exactly its own bytes (empty when all were). */
  mismatches: string[];
  /** One line per exec that failed (its error's code and message; empty when none did). */
  failures: string[];
}

/** Parse `20x10` (sandboxes x concurrent execs), with the rounds and bytes of `fallback`. */
export function loadShape(text: string | undefined, fallback: LoadShape): LoadShape {
  const match = text?.match(/^(\d+)x(\d+)$/);
  if (!match) return fallback;
  return { ...fallback, sandboxes: Number(match[1]), concurrent: Number(match[2]) };
}

/** The value below which `share` of the sorted `values` lie (nearest rank). */
export function percentile(sorted: readonly number[], share: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1))]!;
}

/** Run `shape.concurrent` callers on each of `sandboxes` at once and check every result. */
export async function runLoad(sandboxes: readonly SandboxBackend[], shape: LoadShape): Promise<LoadReport> {
  const latencies: number[] = [];
  const mismatches: string[] = [];
  const failures: string[] = [];
  const started = performance.now();
  await Promise.all(
    sandboxes.flatMap((sandbox, s) =>
      Array.from({ length: shape.concurrent }, async (_, c) => {
        for (let r = 0; r < shape.rounds; r++) {
          const tag = `${s}.${c}.${r}`;
          const stdin = randomBytes(shape.bytes);
          const t0 = performance.now();
          let result: ExecResult;
          try {
            result = await sandbox.exec(['sh', '-c', 'cat; printf "%s" "$1" >&2', 'sh', tag], { stdin });
          } catch (error) {
            // Counted and reported, never hidden: the callers go on, as an agent's would.
            const { code, message } = error as { code?: string; message?: string };
            failures.push(`${tag}: ${code ?? 'untyped'} ${message ?? String(error)}`);
            continue;
          }
          latencies.push(performance.now() - t0);
          const out = Buffer.from(result.stdoutBytes);
          if (result.exitCode !== 0 || !out.equals(stdin) || result.stderr !== tag)
            mismatches.push(
              `${tag}: exit ${result.exitCode}, stdout ${out.length} bytes${out.equals(stdin) ? '' : ' (differs)'}, stderr ${JSON.stringify(result.stderr.slice(0, 80))}`,
            );
        }
      }),
    ),
  );
  const wallMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    ...shape,
    execs: latencies.length,
    wallMs: Math.round(wallMs),
    execsPerSecond: round((latencies.length / wallMs) * 1000),
    p50Ms: round(percentile(latencies, 0.5)),
    p99Ms: round(percentile(latencies, 0.99)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
    mismatches,
    failures,
  };
}

/** Open `count` sandboxes at once with `open`; if one fails, close the others and rethrow. */
export async function openMany(
  count: number,
  open: () => Promise<SandboxBackend>,
): Promise<SandboxBackend[]> {
  const settled = await Promise.allSettled(Array.from({ length: count }, () => open()));
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(opened.map((sandbox) => sandbox.close()));
    throw failed.reason;
  }
  return opened;
}
