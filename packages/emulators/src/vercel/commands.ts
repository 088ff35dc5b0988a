/**
 * Commands of a Vercel sandbox session, run in its container: their output kept as log lines
 * (`{stream, data}` with the bytes decoded as UTF-8 per stream, as text), followers that receive
 * it as NDJSON with backpressure on the command, and the kill endpoint's signal.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import { runInContainer, startInContainer } from '../docker.js';
import { HttpFailure } from '../http.js';
import type { CommandRecord, LogEntry, LogFollower } from './state.js';

/** Output kept for followers that attach late, in characters; beyond it the oldest is dropped. */
const BACKLOG_CHARS = 16 * 1024 * 1024;
export const NDJSON = 'application/x-ndjson';

const pidFile = (id: string) => `/tmp/.vercel-emulator-${id}.pid`;
// $0 the pid file, then the command: records its pid, then becomes it.
const PID_WRAPPER = 'echo $$ >"$0"; exec "$@"';

export function commandId(): string {
  return `cmd_${randomBytes(12).toString('hex')}`;
}

/** Start `name args` in the container; the record is live until `done`. */
export async function startCommand(
  container: Docker.Container,
  init: {
    sessionId: string;
    name: string;
    args: string[];
    cwd: string;
    env: Record<string, string>;
    sudo: boolean;
  },
): Promise<CommandRecord> {
  const id = commandId();
  const started = await startInContainer(
    container,
    ['sh', '-c', PID_WRAPPER, pidFile(id), init.name, ...init.args],
    {
      env: Object.entries(init.env).map(([k, v]) => `${k}=${v}`),
      workingDir: init.cwd,
      ...(init.sudo ? { user: '0' } : {}),
    },
  ).catch((error: Error) => {
    throw new HttpFailure(400, `could not start the command: ${error.message}`, 'command_failed');
  });
  const record: CommandRecord = {
    id,
    name: init.name,
    args: init.args,
    cwd: init.cwd,
    sessionId: init.sessionId,
    startedAt: Date.now(),
    exitCode: null,
    durationMs: undefined,
    backlog: [],
    backlogChars: 0,
    trimmed: false,
    followers: new Set(),
    done: Promise.resolve(),
    pid: () => Promise.resolve(undefined),
  };
  const sources = [started.stdout, started.stderr];
  const publish = (entry: LogEntry) => {
    record.backlog.push(entry);
    record.backlogChars += entry.data.length;
    while (record.backlogChars > BACKLOG_CHARS && record.backlog.length > 1) {
      record.backlogChars -= record.backlog.shift()!.data.length;
      record.trimmed = true;
    }
    const behind: Promise<void>[] = [];
    for (const follower of record.followers) if (!follower.write(entry)) behind.push(follower.drained());
    if (behind.length > 0) {
      // A follower is behind: the command waits for it, as it would on a full pipe.
      for (const s of sources) s.pause();
      void Promise.all(behind).then(() => {
        for (const s of sources) s.resume();
      });
    }
  };
  const pump = (source: Readable, stream: LogEntry['stream']) =>
    new Promise<void>((resolve) => {
      const decoder = new StringDecoder('utf8');
      source.on('data', (chunk: Buffer) => {
        const data = decoder.write(chunk);
        if (data !== '') publish({ stream, data });
      });
      source.on('end', () => {
        const rest = decoder.end();
        if (rest !== '') publish({ stream, data: rest });
        resolve();
      });
      source.on('error', () => resolve());
    });
  const pumped = Promise.all([pump(started.stdout, 'stdout'), pump(started.stderr, 'stderr')]);
  record.done = (async () => {
    const exitCode = await started.exit.catch(() => -1);
    await pumped;
    record.exitCode = exitCode;
    record.durationMs = Date.now() - record.startedAt;
    for (const follower of record.followers) follower.end();
    record.followers.clear();
    removeLater(container, pidFile(id));
  })();
  // Read on a kill only: most commands are never signalled.
  let pid: Promise<number | undefined> | undefined;
  record.pid = () => {
    pid ??= readPid(container, record, id);
    return pid;
  };
  return record;
}

async function readPid(container: Docker.Container, record: CommandRecord, id: string) {
  // The wrapper writes it first thing; a command that already ended needs none.
  for (let i = 0; i < 50 && record.exitCode === null; i++) {
    const read = await runInContainer(container, ['cat', pidFile(id)], { user: '0' }).catch(() => undefined);
    const pid = Number(read?.stdout.toString('utf8').trim());
    if (read?.exitCode === 0 && Number.isInteger(pid) && pid > 0) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** Pid files of ended commands, removed a batch at a time (one exec each, not one per command). */
const leftovers = new WeakMap<Docker.Container, string[]>();
function removeLater(container: Docker.Container, path: string): void {
  const list = leftovers.get(container) ?? [];
  leftovers.set(container, list);
  list.push(path);
  if (list.length < 32) return;
  const batch = list.splice(0);
  void runInContainer(container, ['rm', '-f', '--', ...batch], { user: '0' }).catch(() => {});
}

/** Send the command's output to `res` as NDJSON log lines until it ends; `after` writes a last line. */
export function followLogs(record: CommandRecord, res: ServerResponse, after?: () => string): Promise<void> {
  return new Promise<void>((resolve) => {
    const line = (value: unknown) => `${JSON.stringify(value)}\n`;
    const finish = () => {
      if (after) res.write(after());
      res.end();
      resolve();
    };
    if (record.trimmed)
      res.write(
        line({
          stream: 'error',
          data: { code: 'logs_truncated', message: 'vercel emulator: the start of this output was dropped' },
        }),
      );
    for (const entry of record.backlog) res.write(line(entry));
    if (record.exitCode !== null) {
      finish();
      return;
    }
    const follower: LogFollower = {
      write: (entry) => res.write(line(entry)),
      drained: () => new Promise((r) => res.once('drain', r)),
      end: finish,
    };
    record.followers.add(follower);
    res.once('close', () => {
      if (record.followers.delete(follower)) resolve();
    });
  });
}

/** The kill endpoint: signal the command's process (not its children), as the sandbox's root. */
export async function signalCommand(
  container: Docker.Container,
  record: CommandRecord,
  signal: number,
): Promise<void> {
  if (!Number.isInteger(signal) || signal < 1 || signal > 64)
    throw new HttpFailure(400, `invalid signal ${signal}`, 'bad_request');
  if (record.exitCode !== null) return;
  const pid = await record.pid();
  if (pid === undefined) return;
  await runInContainer(container, ['kill', `-${signal}`, String(pid)], { user: '0' });
}
