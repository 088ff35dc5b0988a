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
