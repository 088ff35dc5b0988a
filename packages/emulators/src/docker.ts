/**
 * The Docker calls the emulators share: run a command in a container with stdout and stderr
 * kept apart (and optional stdin streamed in), and the labels that mark what an emulator owns.
 */
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';

/** Every container and image an emulator creates carries this label (value: the emulator kind). */
export const EMULATOR_LABEL = 'io.agentbox.emulator';
/** The emulator instance that created it, so one instance never touches another's objects. */
export const INSTANCE_LABEL = 'io.agentbox.emulator.instance';

export interface ContainerCommand {
  /** Output streams, live. */
  stdout: Readable;
  stderr: Readable;
  /** Exit code once the command ended and its output was read. */
  exit: Promise<number>;
}

/**
 * Start `argv` in the container. `stdin` (when given) is streamed in and then closed;
 * without it the command's stdin is empty.
 */
export async function startInContainer(
  container: Docker.Container,
  argv: readonly string[],
  opts: { stdin?: Readable | Buffer; user?: string; env?: string[]; workingDir?: string } = {},
): Promise<ContainerCommand> {
  const exec = await container.exec({
    Cmd: [...argv],
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: opts.stdin !== undefined,
    Tty: false,
    ...(opts.user ? { User: opts.user } : {}),
    ...(opts.env ? { Env: opts.env } : {}),
    ...(opts.workingDir ? { WorkingDir: opts.workingDir } : {}),
  });
  const stream = (await exec.start({
    hijack: true,
    stdin: opts.stdin !== undefined,
  })) as NodeJS.ReadWriteStream & Readable;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  demux(stream, stdout, stderr);
  if (opts.stdin !== undefined) {
    const input = opts.stdin;
    if (Buffer.isBuffer(input)) {
      stream.write(input);
      (stream as unknown as { end(): void }).end();
    } else {
      input.pipe(stream as unknown as NodeJS.WritableStream);
    }
  }
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const exit = ended.then(async () => {
    stdout.end();
    stderr.end();
    const info = await exec.inspect();
    return info.ExitCode ?? -1;
  });
  exit.catch(() => {});
  return { stdout, stderr, exit };
}

/**
 * Split Docker's multiplexed exec stream (8-byte frame headers: stream type, payload size) into
 * stdout and stderr, pausing the source while a reader is behind, so memory stays bounded.
 */
function demux(source: Readable, stdout: PassThrough, stderr: PassThrough): void {
  let pending: Buffer = Buffer.alloc(0);
  // The streams a write is waiting on: the source resumes once none is.
  const full = new Set<PassThrough>();
  source.on('data', (chunk: Buffer) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const target = pending[0] === 2 ? stderr : stdout;
      const payload = pending.subarray(8, 8 + size);
      pending = pending.subarray(8 + size);
      if (!target.write(payload) && !full.has(target)) {
        full.add(target);
        source.pause();
        target.once('drain', () => {
          full.delete(target);
          if (full.size === 0) source.resume();
        });
      }
    }
  });
}

/** Run to completion and collect both streams. */
export async function runInContainer(
  container: Docker.Container,
  argv: readonly string[],
  opts: { stdin?: Readable | Buffer; user?: string; env?: string[]; workingDir?: string } = {},
): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
  const started = await startInContainer(container, argv, opts);
  const [stdout, stderr, exitCode] = await Promise.all([
    collect(started.stdout),
    collect(started.stderr),
    started.exit,
  ]);
  return { exitCode, stdout, stderr };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
