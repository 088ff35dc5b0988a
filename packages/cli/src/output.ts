/** Writing results and errors: plain text for people, one JSON value per line with `--json`. */
import type { CheckpointInfo, ExecResult, OpenProgress } from '@agentbox/core';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printError(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Progress of an open (an image pull) as lines on stderr, so stdout stays the command's own: a
 * line per step, byte counts at most every `intervalMs`.
 */
export function progressPrinter(
  write: (line: string) => void = (line) => process.stderr.write(line),
  intervalMs = 1_000,
): (event: OpenProgress) => void {
  let lastAt = 0;
  let lastCounted = false;
  return (event) => {
    const counted = event.total !== undefined && / MiB$/.test(event.message);
    const now = Date.now();
    const done = counted && event.current === event.total;
    if (counted && lastCounted && !done && now - lastAt < intervalMs) return;
    lastAt = now;
    lastCounted = counted;
    write(`agentbox: ${event.message}\n`);
  };
}

/** How long a step runs before it shows progress (AGENTBOX_PROGRESS_AFTER_MS overrides it). */
export const PROGRESS_AFTER_MS = 1_000;

/**
 * Run `work`; if it is still going after `afterMs`, say so on stderr, and say when it ends and
 * how long it took, so a first checkpoint of a big tree or a long rollback never looks hung.
 */
export async function slowStep<T>(
  what: string,
  work: () => Promise<T>,
  options: { afterMs?: number; write?: (line: string) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<T> {
  const setting = options.env?.AGENTBOX_PROGRESS_AFTER_MS;
  const fromEnv = setting ? Number(setting) : Number.NaN;
  const afterMs = options.afterMs ?? (Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : PROGRESS_AFTER_MS);
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const started = performance.now();
  let shown = false;
  const timer = setTimeout(() => {
    shown = true;
    write(`agentbox: ${what}...\n`);
  }, afterMs);
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    if (shown) write(`agentbox: ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
}

/** An ExecResult without its byte arrays (the decoded text is there). */
export function resultJson(result: ExecResult): Record<string, unknown> {
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    truncated: result.truncated,
    totalBytes: result.totalBytes,
    durationMs: result.durationMs,
    command: result.command,
  };
}

/** Resolves once everything written so far to `stream` has been handed to the OS. */
export function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((done) => {
    if (stream.destroyed || stream.writableEnded) done();
    else stream.write('', () => done());
  });
}

/** A checkpoint with every key present (`label: null` rather than a missing key). */
export function checkpointJson(info: CheckpointInfo): Record<string, unknown> {
  return { ...info, label: info.label ?? null };
}
