/**
 * pods/exec over WebSocket, framed as the API server frames it: each message is one channel
 * byte and a payload (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize). Under
 * `v5.channel.k8s.io` a client half-closes stdin with [255, 0]; under v4 and older only by
 * closing the socket. The end is a `V1Status` on channel 3: `Success`, or `NonZeroExitCode`
 * with the code in `details.causes[{reason: 'ExitCode'}]`. Closing the socket does not kill the
 * command (as with a real kubelet, it only loses its stdin).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { WebSocket } from 'ws';

export const PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const CLOSE = 255;
/** Output waits while the client has this much unsent. */
const HIGH_WATER = 1024 * 1024;

export interface ExecRequest {
  argv: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export function parseExecQuery(url: URL): ExecRequest {
  const flag = (name: string) => url.searchParams.get(name) === 'true' || url.searchParams.get(name) === '1';
  return {
    argv: url.searchParams.getAll('command'),
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr'),
    tty: flag('tty'),
  };
}

/** The V1Status that ends an exec. */
export function exitStatus(code: number) {
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command, exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

function frame(channel: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([Buffer.from([channel]), body]);
}

/** Run the exec in `container` and bridge it to the socket until the command ends. */
export async function bridgeExec(
  ws: WebSocket,
  _req: IncomingMessage,
  container: Docker.Container,
  request: ExecRequest,
  log: (line: string) => void,
): Promise<void> {
  const v5 = ws.protocol === 'v5.channel.k8s.io';
  // Listening before the exec exists: frames that come while Docker starts it are kept.
  const early: (Buffer | 'end')[] = [];
  let deliver = (item: Buffer | 'end') => void early.push(item);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const bytes = isBinary ? data : Buffer.from(data.toString(), 'utf8');
    if (bytes.length === 0) return;
    if (bytes[0] === STDIN) deliver(bytes.subarray(1));
    else if (bytes[0] === CLOSE && v5 && bytes[1] === STDIN) deliver('end');
  });
  // Under v4 and older, the socket's end is stdin's end; the command is not killed.
  ws.on('close', () => deliver('end'));
  const exec = await container.exec({
    Cmd: request.argv,
    AttachStdin: request.stdin,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: request.stdin })) as NodeJS.ReadWriteStream &
    Readable;
  let stdinOpen = request.stdin;
  deliver = (item) => {
    if (!stdinOpen) return;
    if (item !== 'end') {
      stream.write(item);
      return;
    }
    stdinOpen = false;
    (stream as unknown as { end(): void }).end();
  };
  for (const item of early.splice(0)) deliver(item);
  // Docker's multiplexed stream: 8-byte headers (stream type, size), then the payload.
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const channel = pending[0] === 2 ? STDERR : STDOUT;
      const payload = pending.subarray(8, 8 + size);
      pending = pending.subarray(8 + size);
      const wanted = channel === STDOUT ? request.stdout : request.stderr;
      if (wanted && ws.readyState === ws.OPEN) ws.send(frame(channel, payload));
    }
    if (ws.bufferedAmount > HIGH_WATER) {
      stream.pause();
      const wait = setInterval(() => {
        if (ws.bufferedAmount <= HIGH_WATER / 2 || ws.readyState !== ws.OPEN) {
          clearInterval(wait);
          stream.resume();
        }
      }, 5);
    }
  });
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', resolve);
  });
  let code = -1;
  for (let i = 0; i < 200; i++) {
    const info = await exec.inspect().catch(() => undefined);
    if (info && !info.Running && info.ExitCode !== null) {
      code = info.ExitCode;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  if (ws.readyState !== ws.OPEN) return;
  if (code < 0) {
    log(`exec ${request.argv[0]}: no exit code from docker`);
    ws.send(
      frame(
        STATUS,
        JSON.stringify({
          metadata: {},
          status: 'Failure',
          reason: 'InternalError',
          message: 'the command ended without an exit code',
        }),
      ),
    );
  } else {
    ws.send(frame(STATUS, JSON.stringify(exitStatus(code))));
  }
  ws.close(1000);
}
