/**
 * `agentbox mcp` driven the way an MCP client drives it: the built executable (dist/cli.js,
 * rebuilt here when a source file is newer) started by the official SDK's `Client` over
 * `StdioClientTransport`, each server on its own local-backend root; one case on docker.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuiltCli } from './built-cli.ts';

const run = promisify(execFile);

beforeAll(ensureBuiltCli, 180_000);

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

interface Served {
  client: Client;
  transport: StdioClientTransport;
  root: string;
  stateHome: string;
  /** What the server wrote on stderr so far. */
  stderr: () => string;
  /** Resolves when the server process has ended. */
  exited: Promise<void>;
  /** Errors the client's transport met (a line on stdout that is not a protocol message, say). */
  protocolErrors: Error[];
}

/** Start `agentbox mcp` on a fresh local root (unless `args` say otherwise) and connect a client. */
async function serve(
  args: string[] = [],
  options: { backendFlags?: string[]; stateHome?: string } = {},
): Promise<Served> {
  const root = await tempDir('agentbox-mcp-');
  const stateHome = options.stateHome ?? (await tempDir('agentbox-mcp-state-'));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', ...(options.backendFlags ?? ['--config', JSON.stringify({ root })]), ...args],
    env: { ...(process.env as Record<string, string>), XDG_STATE_HOME: stateHome },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  const protocolErrors: Error[] = [];
  transport.onerror = (error) => protocolErrors.push(error);
  const client = new Client({ name: 'agentbox-mcp-test', version: '1.0.0' });
  // The client chains its own close and error handlers behind ours.
  await client.connect(transport);
  return { client, transport, root, stateHome, stderr: () => stderr, exited, protocolErrors };
}

async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

/** The agentbox error a failed call carries. */
function agentboxError(result: CallToolResult): Record<string, unknown> | undefined {
  return result._meta?.['agentbox/error'] as Record<string, unknown> | undefined;
}

function errorCode(result: CallToolResult): unknown {
  return agentboxError(result)?.code;
}

/** Sandbox directories left under a local root. */
async function sandboxesUnder(root: string): Promise<string[]> {
  return (await readdir(root)).filter((name) => !name.startsWith('.'));
}

describe('agentbox mcp on the local backend', () => {
  let served: Served;
  beforeAll(async () => {
    served = await serve(['--max-output-bytes', '1000', '--timeout-ms', '20000']);
  }, 60_000);
  afterAll(async () => {
    await served?.client.close();
  });

  it('lists its tools, each with input and output schemas', async () => {
    const { tools } = await served.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'checkpoint',
        'exec',
        'info',
        'list_checkpoints',
        'list_dir',
        'read_file',
        'rollback',
        'write_file',
      ].sort(),
    );
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
      expect(tool.description).toBeTruthy();
    }
    const exec = tools.find((t) => t.name === 'exec')!;
    expect(Object.keys(exec.inputSchema.properties ?? {}).sort()).toEqual(
      ['command', 'cwd', 'env', 'stdin', 'timeoutMs'].sort(),
    );
    expect(exec.inputSchema.required).toEqual(['command']);
  });

  it('exec returns stdout, stderr and the exit code apart, as structured content and text', async () => {
    const result = await call(served.client, 'exec', { command: 'printf out; printf err >&2; exit 3' });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({
      exitCode: 3,
      signal: null,
      stdout: 'out',
      stderr: 'err',
      truncated: { stdout: false, stderr: false },
      totalBytes: { stdout: 3, stderr: 3 },
    });
    expect(text(result)).toBe('exit code 3\n--- stdout ---\nout\n--- stderr ---\nerr');

    const missing = await call(served.client, 'exec', { command: ['no-such-program-here'] });
    expect(missing.isError).toBeFalsy();
    expect(missing.structuredContent).toMatchObject({ exitCode: 127 });
  });

  it('exec takes argv, stdin, env and cwd', async () => {
    await call(served.client, 'write_file', { path: 'sub/dir/.keep', content: '' });
    const result = await call(served.client, 'exec', {
      command: ['sh', '-c', 'cat; printf "|%s|" "$GREETING"; pwd', 'ignored $0'],
      stdin: 'from stdin ',
      env: { GREETING: 'hi there' },
      cwd: 'sub/dir',
    });
    const out = result.structuredContent as { stdout: string; exitCode: number };
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toMatch(/^from stdin \|hi there\|\/.*\/sub\/dir\n$/);
  });

  it('cuts long output to its head and tail and says so in the text', async () => {
    const result = await call(served.client, 'exec', { command: 'seq 1 20000' });
    const full = `${Array.from({ length: 20_000 }, (_, i) => i + 1).join('\n')}\n`;
    const out = result.structuredContent as {
      stdout: string;
      truncated: { stdout: boolean };
      totalBytes: { stdout: number };
    };
    expect(out.truncated.stdout).toBe(true);
    expect(out.totalBytes.stdout).toBe(full.length);
    const match =
      /\n\[… (\d+) bytes cut here: (\d+) in all, the first (\d+) and the last (\d+) are shown …\]\n/.exec(
        out.stdout,
      );
    expect(match).not.toBeNull();
    const [note, dropped, total, headBytes, tailBytes] = [match![0], ...match!.slice(1).map(Number)] as [
      string,
      number,
      number,
      number,
      number,
    ];
    expect(total).toBe(full.length);
    expect(headBytes + tailBytes).toBe(1000);
    expect(dropped).toBe(full.length - 1000);
    const head = out.stdout.slice(0, match!.index);
    const tail = out.stdout.slice(match!.index + note.length);
    expect(full.startsWith(head)).toBe(true);
    expect(full.endsWith(tail)).toBe(true);
    expect(head.length).toBe(headBytes);
    expect(tail.length).toBe(tailBytes);
    expect(text(result)).toContain(note);
  });

  it('does not split a multi-byte character where output is cut', async () => {
    // 3-byte characters: a cut at byte 500 falls inside one.
    const result = await call(served.client, 'exec', {
      command: "i=0; while [ $i -lt 1000 ]; do printf '€'; i=$((i+1)); done",
    });
    const { stdout } = result.structuredContent as { stdout: string };
    expect(stdout).not.toContain('\uFFFD');
    expect(stdout).toMatch(
      /^€+\n\[… \d+ bytes cut here: 3000 in all, the first 498 and the last 498 are shown …\]\n€+$/,
    );
  });

  it('writes then reads a file byte-exact, as text and as base64', async () => {
    const textContent = 'line one\nünïcödé ✓ 🎉\n\ttabs and trailing spaces   \n';
    expect(
      (await call(served.client, 'write_file', { path: 'notes/a.txt', content: textContent }))
        .structuredContent,
    ).toEqual({
      path: 'notes/a.txt',
      bytesWritten: Buffer.byteLength(textContent),
    });
    const readText = await call(served.client, 'read_file', { path: 'notes/a.txt' });
    expect(readText.structuredContent).toEqual({
      path: 'notes/a.txt',
      encoding: 'utf8',
      content: textContent,
      sizeBytes: Buffer.byteLength(textContent),
    });
    expect(text(readText)).toBe(textContent);

    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a, 0x0d, 0xc3, 0x28, ...Buffer.from('tail')]);
    await call(served.client, 'write_file', {
      path: 'bin/blob',
      content: bytes.toString('base64'),
      encoding: 'base64',
      mode: '755',
    });
    const readBinary = await call(served.client, 'read_file', { path: 'bin/blob', encoding: 'base64' });
    const got = readBinary.structuredContent as { content: string; sizeBytes: number };
    expect(Buffer.from(got.content, 'base64').equals(bytes)).toBe(true);
    expect(got.sizeBytes).toBe(bytes.length);
    const mode = await call(served.client, 'exec', { command: 'ls -l bin/blob' });
    expect((mode.structuredContent as { stdout: string }).stdout).toMatch(/^-rwxr-xr-x/);

    // Bytes that are not UTF-8 are refused as text rather than mangled.
    const asText = await call(served.client, 'read_file', { path: 'bin/blob' });
    expect(asText.isError).toBe(true);
    expect(errorCode(asText)).toBe('INVALID_ARGUMENT');
    expect(text(asText)).toMatch(/^INVALID_ARGUMENT: .*not UTF-8 text.*base64/);
  });

  it('lists a directory with types and sizes', async () => {
    await call(served.client, 'write_file', { path: 'listing/b.txt', content: '12345' });
    await call(served.client, 'write_file', { path: 'listing/.hidden', content: '' });
    await call(served.client, 'write_file', { path: 'listing/with space\nand newline', content: 'x' });
    await call(served.client, 'exec', { command: 'mkdir listing/sub && ln -s b.txt listing/link' });
    const result = await call(served.client, 'list_dir', { path: 'listing' });
    expect(result.structuredContent).toEqual({
      path: 'listing',
      truncated: false,
      entries: expect.arrayContaining([
        { name: 'b.txt', type: 'file', sizeBytes: 5 },
        { name: '.hidden', type: 'file', sizeBytes: 0 },
        { name: 'with space\nand newline', type: 'file', sizeBytes: 1 },
        { name: 'sub', type: 'directory', sizeBytes: null },
        { name: 'link', type: 'symlink', sizeBytes: null },
      ]),
    });
    expect((result.structuredContent as { entries: unknown[] }).entries).toHaveLength(5);
    expect(text(result)).toContain('sub/');

    const missing = await call(served.client, 'list_dir', { path: 'no/such/dir' });
    expect(errorCode(missing)).toBe('NOT_FOUND');
  });

  it('checkpoint then rollback restores the content; list_checkpoints shows it', async () => {
    await call(served.client, 'write_file', { path: 'state.txt', content: 'version 1\n' });
    const checkpoint = await call(served.client, 'checkpoint', { label: 'before the change' });
    expect(checkpoint.isError).toBeFalsy();
    const info = checkpoint.structuredContent as { id: string; label: string };
    expect(info.label).toBe('before the change');

    await call(served.client, 'write_file', { path: 'state.txt', content: 'version 2, broken\n' });
    await call(served.client, 'write_file', { path: 'created-later.txt', content: 'x' });
    const listed = await call(served.client, 'list_checkpoints');
    expect(
      (listed.structuredContent as { checkpoints: { id: string }[] }).checkpoints.map((c) => c.id),
    ).toContain(info.id);

    const rollback = await call(served.client, 'rollback', { id: info.id });
    expect(rollback.structuredContent).toEqual({ rolledBackTo: info.id });
    const read = await call(served.client, 'read_file', { path: 'state.txt' });
    expect((read.structuredContent as { content: string }).content).toBe('version 1\n');
    const gone = await call(served.client, 'read_file', { path: 'created-later.txt' });
    expect(errorCode(gone)).toBe('NOT_FOUND');
  });

  it('answers bad arguments and failed calls with tool errors carrying the agentbox code, and keeps serving', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      [
        'exec',
        { command: 42 },
        'INVALID_ARGUMENT',
        /command: must be a non-empty string .* or a non-empty array/,
      ],
      ['exec', {}, 'INVALID_ARGUMENT', /command/],
      ['exec', { command: 'true', timout: 5 }, 'INVALID_ARGUMENT', /timout: unknown key/],
      [
        'exec',
        { command: 'true', timeoutMs: 999_999 },
        'INVALID_ARGUMENT',
        /over this server's limit of 20000/,
      ],
      ['write_file', { path: 'x', content: 'not base64!', encoding: 'base64' }, 'INVALID_ARGUMENT', /base64/],
      ['write_file', { path: 'x', content: '', mode: 'rwx' }, 'INVALID_ARGUMENT', /octal/],
      ['read_file', { path: 'does/not/exist' }, 'NOT_FOUND', /does\/not\/exist/],
      ['read_file', { path: '.' }, 'IS_A_DIRECTORY', /./],
      ['rollback', { id: 'ckpt-nope' }, 'CHECKPOINT_NOT_FOUND', /ckpt-nope/],
      ['no_such_tool', {}, 'INVALID_ARGUMENT', /no tool here/],
    ];
    for (const [name, args, code, message] of cases) {
      const result = await call(served.client, name, args);
      expect(result.isError, `${name} ${JSON.stringify(args)}`).toBe(true);
      expect(errorCode(result), `${name} ${JSON.stringify(args)}`).toBe(code);
      expect(text(result)).toMatch(new RegExp(`^${code}: `));
      expect(text(result)).toMatch(message);
    }
    const after = await call(served.client, 'exec', { command: 'echo still here' });
    expect(after.structuredContent).toMatchObject({ exitCode: 0, stdout: 'still here\n' });
  });

  it('a command past its timeout is a TIMEOUT error with the output it produced', async () => {
    const result = await call(served.client, 'exec', { command: 'echo started; sleep 30', timeoutMs: 300 });
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe('TIMEOUT');
    expect(text(result)).toContain('--- stdout before the timeout ---\nstarted\n');
    expect(result.structuredContent).toBeUndefined();
    expect(agentboxError(result)).toMatchObject({
      code: 'TIMEOUT',
      timeoutMs: 300,
      output: { stdout: 'started\n' },
    });
  });

  it('info reports the backend, the sandbox and the enforcement report', async () => {
    const result = await call(served.client, 'info');
    const info = result.structuredContent as {
      backend: string;
      id: string;
      workdir: string;
      enforcement: object;
    };
    expect(info.backend).toBe('local');
    expect(info.workdir).toBe(join(served.root, info.id, 'workspace'));
    expect(Object.keys(info.enforcement).length).toBeGreaterThan(0);
    expect(text(result)).toMatch(/^local sandbox /);
  });
});

describe('agentbox mcp lifetime', () => {
  it('removes the sandbox when the client disconnects', async () => {
    const served = await serve();
    await call(served.client, 'write_file', { path: 'f.txt', content: 'x' });
    expect(await sandboxesUnder(served.root)).toHaveLength(1);
    const started = performance.now();
    await served.client.close();
    await served.exited;
    // The SDK's client signals a server that is still there after 2 s: this one ended on stdin's end.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await sandboxesUnder(served.root)).toEqual([]);
    expect(served.stderr()).toMatch(/the client closed stdin: closing/);
    expect(served.stderr()).toMatch(/sandbox \S+ removed/);
    expect(served.protocolErrors).toEqual([]);
  });

  it('serves a sandbox made by agentbox open with --id, and keeps it', async () => {
    const root = await tempDir('agentbox-mcp-open-');
    const stateHome = await tempDir('agentbox-mcp-state-');
    const env = { ...process.env, XDG_STATE_HOME: stateHome };
    const config = JSON.stringify({ root });
    await run(process.execPath, [BIN, 'open', '--config', config, '--id', 'made-by-open'], { env });
    await run(process.execPath, [BIN, 'exec', '--id', 'made-by-open', '-c', 'echo before > f.txt'], { env });
    const served = await serve(['--id', 'made-by-open'], { backendFlags: ['--config', config], stateHome });
    const read = await call(served.client, 'read_file', { path: 'f.txt' });
    expect((read.structuredContent as { content: string }).content).toBe('before\n');
    await served.client.close();
    await served.exited;
    expect(await sandboxesUnder(root)).toEqual(['made-by-open']);
    await run(process.execPath, [BIN, 'close', '--id', 'made-by-open'], { env });
  });

  it('a call the client cancels kills its command, and the server goes on', async () => {
    const served = await serve();
    try {
      const cancel = new AbortController();
      const pending = served.client.callTool(
        { name: 'exec', arguments: { command: 'echo $$ > pid; exec sleep 30' } },
        undefined,
        { signal: cancel.signal },
      );
      // Wait until the command runs, then cancel the call.
      for (let i = 0; i < 100; i++) {
        const pid = await call(served.client, 'exec', { command: 'cat pid 2>/dev/null' });
        if ((pid.structuredContent as { stdout: string }).stdout) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      cancel.abort();
      await expect(pending).rejects.toThrow();
      let alive = 0;
      for (let i = 0; i < 40; i++) {
        const probe = await call(served.client, 'exec', { command: 'kill -0 "$(cat pid)" 2>/dev/null' });
        alive = (probe.structuredContent as { exitCode: number }).exitCode;
        if (alive !== 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(alive, 'the cancelled command is still running').not.toBe(0);
      expect(served.stderr()).toMatch(/exec failed: ABORTED/);
    } finally {
      await served.client.close();
    }
  });

  it('kills a running command and removes the sandbox when the client disconnects mid-call', async () => {
    const served = await serve();
    const pending = call(served.client, 'exec', { command: 'echo $$ > pid; exec sleep 30' }).catch(
      (error: Error) => error,
    );
    const pidFile = join(served.root, (await sandboxesUnder(served.root))[0]!, 'workspace', 'pid');
    let pid = '';
    for (let i = 0; i < 100 && !pid; i++) {
      pid = await readFile(pidFile, 'utf8').catch(() => '');
      if (!pid) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(pid).not.toBe('');
    await served.client.close();
    await served.exited;
    expect(await pending).toBeInstanceOf(Error); // the connection closed before an answer
    expect(served.stderr()).toMatch(/exec failed: ABORTED/);
    expect(await sandboxesUnder(served.root)).toEqual([]);
    expect(() => process.kill(Number(pid), 0)).toThrow(); // the command is gone too
  });

  it('removes the sandbox on SIGTERM', async () => {
    const served = await serve();
    expect(await sandboxesUnder(served.root)).toHaveLength(1);
    process.kill(served.transport.pid!, 'SIGTERM');
    await served.exited;
    expect(await sandboxesUnder(served.root)).toEqual([]);
    expect(served.stderr()).toMatch(/sandbox \S+ removed/);
  });

  it('keeps the sandbox with --keep, for later commands by id', async () => {
    const served = await serve(['--keep']);
    const info = (await call(served.client, 'info')).structuredContent as { id: string };
    await call(served.client, 'write_file', { path: 'kept.txt', content: 'still here' });
    await served.client.close();
    await served.exited;
    expect(await sandboxesUnder(served.root)).toEqual([info.id]);
    // Recorded: `agentbox exec --id` finds it with no --config.
    const env = { ...process.env, XDG_STATE_HOME: served.stateHome };
    const { stdout } = await run(process.execPath, [BIN, 'exec', '--id', info.id, '--', 'cat', 'kept.txt'], {
      env,
    });
    expect(stdout).toBe('still here');
    await run(process.execPath, [BIN, 'close', '--id', info.id], { env });
    expect(await sandboxesUnder(served.root)).toEqual([]);
  });

  it('refuses bad flags with exit 2 before speaking the protocol', async () => {
    const bad = await run(process.execPath, [BIN, 'mcp', '--timeout-ms', 'soon'], { encoding: 'utf8' }).catch(
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect((bad as { stderr: string }).stderr).toMatch(/--timeout-ms must be a whole number/);
  });

  it('documents itself in --help', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'mcp', '--help']);
    expect(stdout).toMatch(/^Usage: agentbox mcp/);
    for (const tool of [
      'exec',
      'read_file',
      'write_file',
      'list_dir',
      'checkpoint',
      'rollback',
      'list_checkpoints',
      'info',
    ])
      expect(stdout).toMatch(new RegExp(`^  ${tool} `, 'm'));
    const main = await run(process.execPath, [BIN, '--help']);
    expect(main.stdout).toMatch(/^ {2}mcp /m);
  });
});

const DOCKER_IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
const dockerMissing = (() => {
  try {
    execFileSync('docker', ['image', 'inspect', DOCKER_IMAGE], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `docker or the image ${DOCKER_IMAGE} is not available here (scripts/provision-docker.sh builds it)`;
  }
})();
if (dockerMissing) console.warn(`skipping the docker case of agentbox mcp: ${dockerMissing}`);

describe.skipIf(dockerMissing !== undefined)('agentbox mcp on the docker backend', () => {
  it('serves a hardened container and removes it when the client disconnects', async () => {
    const served = await serve([], {
      backendFlags: ['--backend', 'docker', '--config', JSON.stringify({ image: DOCKER_IMAGE })],
    });
    const { id } = (await call(served.client, 'info')).structuredContent as { id: string };
    const labelled = async () => {
      const filter = `label=agentbox.sandbox-id=${id}`;
      const containers = await run('docker', ['ps', '-aq', '--filter', filter]);
      const volumes = await run('docker', ['volume', 'ls', '-q', '--filter', filter]);
      return `${containers.stdout}${volumes.stdout}`.trim();
    };
    try {
      expect(await labelled()).not.toBe('');
      const result = await call(served.client, 'exec', { command: 'id -u; echo oops >&2; exit 4' });
      expect(result.structuredContent).toMatchObject({ exitCode: 4, stdout: '1000\n', stderr: 'oops\n' });

      const bytes = Buffer.from([0, 0xff, 0x0a, 0xc3, 0x28, 0x41]);
      await call(served.client, 'write_file', {
        path: 'd/blob',
        content: bytes.toString('base64'),
        encoding: 'base64',
      });
      const read = await call(served.client, 'read_file', { path: 'd/blob', encoding: 'base64' });
      expect(
        Buffer.from((read.structuredContent as { content: string }).content, 'base64').equals(bytes),
      ).toBe(true);
      const listed = await call(served.client, 'list_dir', { path: 'd' });
      expect((listed.structuredContent as { entries: unknown[] }).entries).toEqual([
        { name: 'blob', type: 'file', sizeBytes: 6 },
      ]);
    } finally {
      await served.client.close();
      await served.exited;
    }
    expect(await labelled()).toBe('');
  }, 120_000);
});
