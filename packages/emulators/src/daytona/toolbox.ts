/**
 * The Daytona toolbox API (`{toolboxProxyUrl}/{sandboxId}/...`) on a container: process
 * execute, sessions and their commands, and the file endpoints. Commands and file operations
 * run as the container's user, so permission checks apply as in a real sandbox.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import busboy from 'busboy';
import { collect, runInContainer, startInContainer } from '../docker.js';
import { DOWNLOAD_SCRIPT, fileFailure, UPLOAD_SCRIPT } from '../files.js';
import { HttpFailure, type Router, readJson, sendJson } from '../http.js';
import type { SandboxRecord, Session, SessionCommand } from './state.js';

/** Linux limits one argument to 128 KiB: longer commands are handed over as a script file. */
const INLINE_COMMAND_BYTES = 100 * 1024;

export type SandboxLookup = (id: string) => SandboxRecord;

export function toolboxRoutes(router: Router, prefix: string, started: SandboxLookup): void {
  const on = (
    method: string,
    path: string,
    fn: (
      sandbox: SandboxRecord,
      req: IncomingMessage,
      res: ServerResponse,
      params: Record<string, string>,
      url: URL,
    ) => Promise<void>,
  ) =>
    router.add(method, `${prefix}/:sandboxId${path}`, (req, res, params, url) =>
      fn(started(params.sandboxId!), req, res, params, url),
    );

  on('GET', '/work-dir', async (sandbox, _req, res) => {
    const info = await sandbox.container.inspect();
    sendJson(res, 200, { dir: info.Config.WorkingDir || '/' });
  });
  on('GET', '/user-home-dir', async (sandbox, _req, res) => {
    const { stdout } = await runInContainer(sandbox.container, ['sh', '-c', 'printf %s "$HOME"']);
    sendJson(res, 200, { dir: stdout.toString('utf8') || '/' });
  });

  on('POST', '/process/execute', async (sandbox, req, res) => {
    const body = await readJson(req);
    const command = requireString(body.command, 'command');
    const env = Object.entries((body.envs as Record<string, string> | undefined) ?? {}).map(
      ([k, v]) => `${k}=${v}`,
    );
    const { exitCode, stdout, stderr } = await runCommand(sandbox, command, {
      env,
      workingDir: typeof body.cwd === 'string' && body.cwd !== '' ? body.cwd : undefined,
    });
    sendJson(res, 200, { exitCode, result: Buffer.concat([stdout, stderr]).toString('utf8') });
  });

  on('GET', '/process/session', async (sandbox, _req, res) => {
    sendJson(res, 200, [...sandbox.sessions.values()].map(sessionDto));
  });
  on('POST', '/process/session', async (sandbox, req, res) => {
    const sessionId = requireString((await readJson(req)).sessionId, 'sessionId');
    if (sandbox.sessions.has(sessionId)) throw new HttpFailure(409, `session ${sessionId} already exists`);
    sandbox.sessions.set(sessionId, { id: sessionId, commands: new Map() });
    sendJson(res, 201, undefined);
  });
  on('GET', '/process/session/:sessionId', async (sandbox, _req, res, params) => {
    sendJson(res, 200, sessionDto(session(sandbox, params.sessionId!)));
  });
  on('DELETE', '/process/session/:sessionId', async (sandbox, _req, res, params) => {
    const found = session(sandbox, params.sessionId!);
    for (const command of found.commands.values()) command.stdin?.end();
    sandbox.sessions.delete(found.id);
    sendJson(res, 204, undefined);
  });
  on('POST', '/process/session/:sessionId/exec', async (sandbox, req, res, params) => {
    const found = session(sandbox, params.sessionId!);
    const body = await readJson(req);
    const command = requireString(body.command, 'command');
    const runAsync = body.runAsync === true || body.async === true;
    const record: SessionCommand = {
      id: randomUUID(),
      command,
      exitCode: undefined,
      stdout: [],
      stderr: [],
      done: Promise.resolve(),
    };
    found.commands.set(record.id, record);
    if (!runAsync) {
      const { exitCode, stdout, stderr } = await runCommand(sandbox, command, {});
      record.exitCode = exitCode;
      record.stdout.push(stdout);
      record.stderr.push(stderr);
      sendJson(res, 200, {
        cmdId: record.id,
        exitCode,
        stdout: stdout.toString('utf8'),
        stderr: stderr.toString('utf8'),
        output: Buffer.concat([stdout, stderr]).toString('utf8'),
      });
      return;
    }
    const stdin = new PassThrough();
    record.stdin = stdin;
    const running = await startCommand(sandbox, command, { stdin });
    record.done = (async () => {
      running.stdout.on('data', (chunk: Buffer) => record.stdout.push(chunk));
      running.stderr.on('data', (chunk: Buffer) => record.stderr.push(chunk));
      record.exitCode = await running.exit.catch(() => -1);
      record.stdin = undefined;
    })();
    sendJson(res, 202, { cmdId: record.id });
  });
  on('GET', '/process/session/:sessionId/command/:commandId', async (sandbox, _req, res, params) => {
    const command = sessionCommand(sandbox, params.sessionId!, params.commandId!);
    sendJson(res, 200, { id: command.id, command: command.command, exitCode: command.exitCode });
  });
  on('GET', '/process/session/:sessionId/command/:commandId/logs', async (sandbox, req, res, params, url) => {
    const command = sessionCommand(sandbox, params.sessionId!, params.commandId!);
    if (url.searchParams.get('follow') === 'true' || req.headers.upgrade)
      throw new HttpFailure(501, 'daytona emulator: following command logs (WebSocket) is not emulated');
    const stdout = Buffer.concat(command.stdout);
    const stderr = Buffer.concat(command.stderr);
    sendJson(res, 200, {
      stdout: stdout.toString('utf8'),
      stderr: stderr.toString('utf8'),
      output: Buffer.concat([stdout, stderr]).toString('utf8'),
    });
  });
  on('POST', '/process/session/:sessionId/command/:commandId/input', async (sandbox, req, res, params) => {
    const command = sessionCommand(sandbox, params.sessionId!, params.commandId!);
    const data = (await readJson(req)).data;
    if (typeof data !== 'string') throw new HttpFailure(400, 'data must be a string');
    if (!command.stdin) throw new HttpFailure(400, `command ${command.id} does not take input (it ended)`);
    command.stdin.write(data);
    sendJson(res, 200, undefined);
  });

  on('GET', '/files/info', async (sandbox, _req, res, _params, url) => {
    const path = queryPath(url, 'path');
    const { exitCode, stdout, stderr } = await runInContainer(sandbox.container, [
      'stat',
      '-c',
      '%s|%f|%a|%U|%G|%Y|%F',
      '--',
      path,
    ]);
    if (exitCode !== 0) throw fileFailure(stderr, path);
    const [size, rawMode, perms, owner, group, mtime, kind] = stdout.toString('utf8').trim().split('|');
    const modifiedAt = new Date(Number(mtime) * 1000).toISOString();
    sendJson(res, 200, {
      name: path.split('/').pop() ?? path,
      path,
      size: Number(size),
      isDir: kind === 'directory',
      mode: formatMode(Number.parseInt(rawMode ?? '0', 16)),
      permissions: `0${perms}`,
      owner,
      group,
      modTime: modifiedAt,
      modifiedAt,
    });
  });
  on('POST', '/files/folder', async (sandbox, _req, res, _params, url) => {
    const path = queryPath(url, 'path');
    const mode = url.searchParams.get('mode') ?? '755';
    const result = await runInContainer(sandbox.container, ['mkdir', '-p', '-m', mode, '--', path]);
    if (result.exitCode !== 0) throw fileFailure(result.stderr, path);
    sendJson(res, 201, undefined);
  });
  on('DELETE', '/files', async (sandbox, _req, res, _params, url) => {
    const path = queryPath(url, 'path');
    const recursive = url.searchParams.get('recursive') === 'true';
    const script = recursive
      ? 'rm -rf -- "$0"'
      : '[ -d "$0" ] && [ ! -L "$0" ] && { echo "$0: Is a directory" >&2; exit 1; }; rm -- "$0"';
    const result = await runInContainer(sandbox.container, ['sh', '-c', script, path]);
    if (result.exitCode !== 0) throw fileFailure(result.stderr, path);
    sendJson(res, 204, undefined);
  });
  on('POST', '/files/permissions', async (sandbox, _req, res, _params, url) => {
    const path = queryPath(url, 'path');
    const mode = url.searchParams.get('mode');
    const owner = url.searchParams.get('owner');
    const group = url.searchParams.get('group');
    if (mode) {
      if (!/^[0-7]{3,4}$/.test(mode)) throw new HttpFailure(400, `invalid mode ${mode}`);
      const result = await runInContainer(sandbox.container, ['chmod', mode, '--', path]);
      if (result.exitCode !== 0) throw fileFailure(result.stderr, path);
    }
    if (owner || group) {
      const result = await runInContainer(
        sandbox.container,
        ['chown', `${owner ?? ''}${group ? `:${group}` : ''}`, '--', path],
        { user: '0' },
      );
      if (result.exitCode !== 0) throw fileFailure(result.stderr, path);
    }
    sendJson(res, 200, undefined);
  });
  on('POST', '/files/move', async (sandbox, _req, res, _params, url) => {
    const source = queryPath(url, 'source');
    const destination = queryPath(url, 'destination');
    const result = await runInContainer(sandbox.container, ['mv', '--', source, destination]);
    if (result.exitCode !== 0) throw fileFailure(result.stderr, source);
    sendJson(res, 200, undefined);
  });
  on('POST', '/files/bulk-upload', async (sandbox, req, res) => {
    await receiveUploads(sandbox, req);
    sendJson(res, 200, undefined);
  });
  on('POST', '/files/bulk-download', async (sandbox, req, res) => {
    const paths = (await readJson(req)).paths;
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string'))
      throw new HttpFailure(400, 'paths must be an array of strings');
    await sendDownloads(sandbox, paths as string[], res);
  });
}

function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '')
    throw new HttpFailure(400, `${name} must be a non-empty string`);
  return value;
}

function queryPath(url: URL, name: string): string {
  const value = url.searchParams.get(name);
  if (!value) throw new HttpFailure(400, `query parameter ${name} is required`);
  return value;
}

function session(sandbox: SandboxRecord, id: string): Session {
  const found = sandbox.sessions.get(id);
  if (!found) throw new HttpFailure(404, `session ${id} not found`);
  return found;
}

function sessionCommand(sandbox: SandboxRecord, sessionId: string, commandId: string): SessionCommand {
  const found = session(sandbox, sessionId).commands.get(commandId);
  if (!found) throw new HttpFailure(404, `command ${commandId} not found in session ${sessionId}`);
  return found;
}

function sessionDto(found: Session): Record<string, unknown> {
  return {
    sessionId: found.id,
    commands: [...found.commands.values()].map((c) => ({
      id: c.id,
      command: c.command,
      exitCode: c.exitCode,
    })),
  };
}

/** `sh -c command`, or, for a command too long for one argument, the command as a script file. */
async function commandArgv(
  sandbox: SandboxRecord,
  command: string,
): Promise<{ argv: string[]; cleanup: () => Promise<void> }> {
  if (Buffer.byteLength(command) <= INLINE_COMMAND_BYTES)
    return { argv: ['sh', '-c', command], cleanup: async () => {} };
  const file = `/tmp/.daytona-emulator-command-${randomUUID()}`;
  const written = await runInContainer(sandbox.container, ['sh', '-c', 'umask 077 && cat > "$0"', file], {
    stdin: Buffer.from(command, 'utf8'),
  });
  if (written.exitCode !== 0)
    throw new HttpFailure(500, `could not stage the command: ${written.stderr.toString('utf8')}`);
  return {
    argv: ['sh', file],
    cleanup: async () => {
      await runInContainer(sandbox.container, ['rm', '-f', file]).catch(() => {});
    },
  };
}

async function runCommand(
  sandbox: SandboxRecord,
  command: string,
  opts: { env?: string[]; workingDir?: string | undefined },
): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
  const { argv, cleanup } = await commandArgv(sandbox, command);
  try {
    return await runInContainer(sandbox.container, argv, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.workingDir ? { workingDir: opts.workingDir } : {}),
    });
  } finally {
    await cleanup();
  }
}

async function startCommand(sandbox: SandboxRecord, command: string, opts: { stdin: Readable }) {
  const { argv, cleanup } = await commandArgv(sandbox, command);
  const started = await startInContainer(sandbox.container, argv, { stdin: opts.stdin });
  void started.exit.finally(cleanup).catch(() => {});
  return started;
}

/** A file name as an RFC 5987 extended value, so that any UTF-8 name survives the header. */
function encodeRfc5987(name: string): string {
  return encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function formatMode(raw: number): string {
  const kind = (raw & 0o170000) === 0o040000 ? 'd' : (raw & 0o170000) === 0o120000 ? 'L' : '-';
  const bits = 'rwxrwxrwx';
  let text = kind;
  for (let i = 0; i < 9; i++) text += raw & (1 << (8 - i)) ? bits[i] : '-';
  return text;
}

/** `files[i].path` and `files[i].file` fields; each file is streamed into the container as it arrives. */
async function receiveUploads(sandbox: SandboxRecord, req: IncomingMessage): Promise<void> {
  const paths = new Map<string, string>();
  const pending: Promise<void>[] = [];
  // Each file's write is awaited below, or not at all when the request fails first (a client
  // that gave up mid-upload): either way its failure is never an unhandled rejection.
  const keep = (write: Promise<void>) => {
    write.catch(() => {});
    pending.push(write);
  };
  await new Promise<void>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fieldSize: 64 * 1024 } });
    } catch (error) {
      reject(new HttpFailure(400, `bulk-upload needs a multipart body: ${(error as Error).message}`));
      return;
    }
    parser.on('field', (name, value) => {
      const index = /^files\[(\d+)\]\.path$/.exec(name)?.[1];
      if (index !== undefined) paths.set(index, value);
    });
    parser.on('file', (name, stream, info) => {
      const index = /^files\[(\d+)\]\.file$/.exec(name)?.[1];
      // The SDK sends the path field before its file; the file name carries it too.
      const path = (index !== undefined ? paths.get(index) : undefined) ?? info.filename;
      if (!path) {
        stream.resume();
        keep(Promise.reject(new HttpFailure(400, `file part ${name} has no path`)));
        return;
      }
      keep(
        (async () => {
          const result = await runInContainer(sandbox.container, ['sh', '-c', UPLOAD_SCRIPT, path], {
            stdin: stream,
          });
          if (result.exitCode !== 0) throw fileFailure(result.stderr, path);
        })(),
      );
    });
    parser.on('error', reject);
    parser.on('close', resolve);
    req.pipe(parser);
  });
  const results = await Promise.allSettled(pending);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A multipart/form-data answer: a `file` part per path, or an `error` part with a JSON body. */
async function sendDownloads(sandbox: SandboxRecord, paths: string[], res: ServerResponse): Promise<void> {
  const boundary = `emulator-${randomUUID()}`;
  res.writeHead(200, { 'content-type': `multipart/form-data; boundary=${boundary}` });
  const head = (name: string, path: string, type: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename*=UTF-8''${encodeRfc5987(path)}\r\nContent-Type: ${type}\r\n\r\n`;
  for (const path of paths) {
    const started = await startInContainer(sandbox.container, ['sh', '-c', DOWNLOAD_SCRIPT, path]);
    const stderr = collect(started.stderr);
    // Wait for the first byte or the end, so that a failure becomes an error part, not a file.
    const first = await new Promise<Buffer | null>((resolve) => {
      started.stdout.once('data', (chunk: Buffer) => {
        started.stdout.pause();
        resolve(chunk);
      });
      started.stdout.once('end', () => resolve(null));
    });
    if (first === null) {
      const exitCode = await started.exit;
      if (exitCode !== 0) {
        const failure = fileFailure(await stderr, path);
        res.write(head('error', path, 'application/json'));
        res.write(
          JSON.stringify({ message: failure.message, statusCode: failure.status, code: failure.code }),
        );
        res.write('\r\n');
        continue;
      }
      res.write(head('file', path, 'application/octet-stream'));
      res.write('\r\n');
      continue;
    }
    res.write(head('file', path, 'application/octet-stream'));
    res.write(first);
    started.stdout.resume();
    for await (const chunk of started.stdout) {
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
    }
    await started.exit;
    res.write('\r\n');
  }
  res.end(`--${boundary}--\r\n`);
}
