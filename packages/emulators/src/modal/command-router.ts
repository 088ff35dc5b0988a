/**
 * The task command router of the Modal emulator: execs (each a `docker exec` in the sandbox's
 * container, its output kept whole so a reader can resume at any offset), stdin by offset,
 * exit status, the fs-tools helper, and filesystem snapshots (`docker commit`).
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { type CallContext, ServerError, Status } from 'nice-grpc';
import { EMULATOR_LABEL, INSTANCE_LABEL, startInContainer } from '../docker.js';
import { FS_TOOLS_PATH, fsToolsCommand, fsToolsError } from './fs-tools.js';
import { type ExecRecord, OutputLog, type SandboxRecord } from './state.js';

/** How long a finished exec whose output was read whole is still known. */
const FORGET_AFTER_MS = 30_000;
/** Largest stdio message sent at once. */
const READ_CHUNK = 1024 * 1024;
export const SNAPSHOT_REPO = 'agentbox-modal-emulator/image';

export interface RouterHost {
  instance: string;
  /** The running sandbox this call's JWT and task id name, or a gRPC error. */
  sandboxFor(taskId: string, context: CallContext): SandboxRecord;
  /** A snapshot image was committed: record it, return its image id. */
  addSnapshotImage(dockerImage: string): string;
  log(line: string): void;
}

type Request = Record<string, unknown>;

function execOf(sandbox: SandboxRecord, execId: unknown): ExecRecord {
  const exec = sandbox.execs.get(String(execId));
  if (!exec) throw new ServerError(Status.NOT_FOUND, `exec ${String(execId)} not found`);
  return exec;
}

function envOf(request: Request): Record<string, string> {
  const env: Record<string, string> = { ...((request.env as Record<string, string>) ?? {}) };
  for (const source of (request.secretSources as { env?: { contents?: Record<string, string> } }[]) ?? [])
    Object.assign(env, source.env?.contents ?? {});
  return env;
}

export function commandRouterHandlers(host: RouterHost) {
  async function startExec(sandbox: SandboxRecord, request: Request): Promise<void> {
    const execId = String(request.execId || randomUUID());
    if (sandbox.execs.has(execId)) throw new ServerError(Status.ALREADY_EXISTS, `exec ${execId} exists`);
    const args = (request.commandArgs as string[]) ?? [];
    if (args.length === 0) throw new ServerError(Status.INVALID_ARGUMENT, 'commandArgs is empty');
    let argv = args;
    let fsTools = false;
    if (args[0] === FS_TOOLS_PATH) {
      const command = fsToolsCommand(args[1]);
      if ('unsupported' in command) {
        host.log(command.unsupported);
        throw new ServerError(Status.UNIMPLEMENTED, `modal emulator: ${command.unsupported}`);
      }
      argv = command.argv;
      fsTools = true;
    }
    const stdin = new PassThrough();
    const record: ExecRecord = {
      id: execId,
      stdout: new OutputLog(),
      stderr: new OutputLog(),
      stdin,
      stdinWritten: 0,
      stdinClosed: false,
      exit: undefined,
      exited: Promise.resolve(),
    };
    sandbox.execs.set(execId, record);
    sandbox.lastActivity = Date.now();
    const env = { ...sandbox.env, ...envOf(request) };
    const workdir = (request.workdir as string | undefined) || sandbox.workdir;
    const started = await startInContainer(sandbox.container, argv, {
      stdin,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...(workdir ? { workingDir: workdir } : {}),
    });
    const discard = (stream: 'stdout' | 'stderr') =>
      Number(request[`${stream}Config`] ?? 0) === 0 && !fsTools;
    started.stdout.on('data', (chunk: Buffer) => {
      if (!discard('stdout')) record.stdout.append(chunk);
    });
    const stderrChunks: Buffer[] = [];
    started.stderr.on('data', (chunk: Buffer) => {
      if (fsTools) stderrChunks.push(chunk);
      else if (!discard('stderr')) record.stderr.append(chunk);
    });
    record.exited = started.exit.then(
      (code) => {
        if (fsTools) {
          const structured = fsToolsError(code);
          record.stderr.append(structured ?? Buffer.concat(stderrChunks));
          if (structured) code = 1;
        }
        record.exit = code > 128 && code < 160 ? { signal: code - 128 } : { code };
      },
      (error: Error) => {
        host.log(`exec ${execId} in ${sandbox.id} failed: ${error.message}`);
        record.exit = { code: -1 };
      },
    );
    void record.exited.finally(() => {
      record.stdout.end();
      record.stderr.end();
      record.stdin = undefined;
      sandbox.lastActivity = Date.now();
    });
  }

  function writeStdin(exec: ExecRecord, offset: number, data: Uint8Array, eof: boolean): void {
    if (exec.stdinClosed) {
      if (data.length === 0) return;
      throw new ServerError(Status.FAILED_PRECONDITION, 'stdin is closed');
    }
    // Writes are by offset: a retried write of bytes already taken is skipped.
    const skip = exec.stdinWritten - offset;
    if (skip < 0)
      throw new ServerError(Status.OUT_OF_RANGE, `stdin offset ${offset} is past ${exec.stdinWritten}`);
    const fresh = Buffer.from(data).subarray(Math.min(skip, data.length));
    if (fresh.length > 0) {
      exec.stdin?.write(fresh);
      exec.stdinWritten += fresh.length;
    }
    if (eof) {
      exec.stdinClosed = true;
      exec.stdin?.end();
    }
  }

  async function waitExit(exec: ExecRecord, signal: AbortSignal): Promise<void> {
    if (exec.exit) return;
    await Promise.race([
      exec.exited,
      new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    ]);
  }

  return {
    async taskExecStart(request: Request, context: CallContext) {
      await startExec(host.sandboxFor(String(request.taskId), context), request);
      return {};
    },
    async *taskExecStdioRead(request: Request, context: CallContext) {
      const sandbox = host.sandboxFor(String(request.taskId), context);
      const exec = execOf(sandbox, request.execId);
      const log = Number(request.fileDescriptor) === 1 ? exec.stderr : exec.stdout;
      let offset = Number(request.offset ?? 0);
      while (true) {
        const data = await log.read(offset, READ_CHUNK, context.signal);
        if (data === undefined) return;
        if (data.length === 0) break;
        offset += data.length;
        yield { data };
      }
      log.drained = true;
      // Once both streams were read to their end, the output is let go of (a client that
      // retries a read does so within seconds).
      if (exec.exit && exec.stdout.drained && exec.stderr.drained)
        setTimeout(() => sandbox.execs.delete(exec.id), FORGET_AFTER_MS).unref();
    },
    async taskExecStdinWrite(request: Request, context: CallContext) {
      const exec = execOf(host.sandboxFor(String(request.taskId), context), request.execId);
      writeStdin(
        exec,
        Number(request.offset ?? 0),
        (request.data as Uint8Array) ?? new Uint8Array(0),
        request.eof === true,
      );
      return {};
    },
    async taskExecStdinWriteStream(requests: AsyncIterable<Request>, context: CallContext) {
      let exec: ExecRecord | undefined;
      let offset = 0;
      for await (const message of requests) {
        const start = message.start as Request | undefined;
        if (start) {
          exec = execOf(host.sandboxFor(String(start.taskId), context), start.execId);
          offset = Number(start.offset ?? 0);
          continue;
        }
        if (!exec) throw new ServerError(Status.INVALID_ARGUMENT, 'the first message must be start');
        const data = message.data as Uint8Array | undefined;
        if (data && data.length > 0) {
          writeStdin(exec, offset, data, false);
          offset += data.length;
        }
        if (message.end) writeStdin(exec, offset, new Uint8Array(0), true);
      }
      return {};
    },
    async taskExecStdinStatus(request: Request, context: CallContext) {
      const exec = execOf(host.sandboxFor(String(request.taskId), context), request.execId);
      return { numBytesWritten: exec.stdinWritten, closed: exec.stdinClosed };
    },
    async taskExecPoll(request: Request, context: CallContext) {
      const exec = execOf(host.sandboxFor(String(request.taskId), context), request.execId);
      return exec.exit ?? {};
    },
    async taskExecWait(request: Request, context: CallContext) {
      const exec = execOf(host.sandboxFor(String(request.taskId), context), request.execId);
      await waitExit(exec, context.signal);
      if (!exec.exit) throw new ServerError(Status.DEADLINE_EXCEEDED, 'still running');
      return exec.exit;
    },
    async taskSnapshotFilesystem(request: Request, context: CallContext) {
      const sandbox = host.sandboxFor(String(request.taskId), context);
      const tag = randomUUID();
      await sandbox.container.commit({
        repo: SNAPSHOT_REPO,
        tag,
        pause: true,
        changes: `LABEL ${EMULATOR_LABEL}=modal\nLABEL ${INSTANCE_LABEL}=${host.instance}`,
      });
      const imageId = host.addSnapshotImage(`${SNAPSHOT_REPO}:${tag}`);
      host.log(`snapshot of ${sandbox.id} is image ${imageId}`);
      return { imageId };
    },
  };
}
