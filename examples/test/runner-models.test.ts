/**
 * The example runner with real model clients (the official SDKs) against local fake servers: the
 * fallback takes over from a primary that answers 500, a token budget stops the run with a
 * report and a non-zero status, and the session log it wrote reads back.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSessionLog, summarizeSessionLog } from '@agentbox/agent';
import { startFakeModelServer } from '@agentbox/emulators';
import { expect, it } from 'vitest';

const EXAMPLES_DIR = fileURLToPath(new URL('..', import.meta.url));

function runner(args: readonly string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/runner.ts', ...args], {
    cwd: EXAMPLES_DIR,
    env: { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', MODEL_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('falls back from a primary answering 500, stops at its token budget with a report, and logs it all', async () => {
  const primary = await startFakeModelServer({
    api: 'openai',
    steps: [],
    after: { status: 500, message: 'primary is down' },
  });
  const fallback = await startFakeModelServer({
    api: 'anthropic',
    apiKey: 'fallback-secret-key',
    after: {
      toolCalls: [{ name: 'exec', arguments: { command: 'echo working >> work.txt' } }],
      usage: { inputTokens: 100, outputTokens: 40 },
    },
  });
  const dir = await mkdtemp(join(tmpdir(), 'agentbox-runner-models-'));
  try {
    const logPath = join(dir, 'session.jsonl');
    const args = [
      ...['--config', JSON.stringify({ root: join(dir, 'boxes') })],
      ...['--provider', 'openai', '--model-url', primary.url, '--model', 'gpt-4o-mini'],
      ...[
        '--fallback-provider',
        'anthropic',
        '--fallback-url',
        fallback.url,
        '--fallback-model',
        'claude-haiku-4-5',
      ],
      ...['--max-tokens', '100', '--log', logPath, '--task', 'keep working'],
    ];
    const run = await runner(args, { MODEL_API_KEY: primary.apiKey, FALLBACK_API_KEY: fallback.apiKey });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /⇢ openai:gpt-4o-mini failed \(.*answered 500.*\); anthropic:claude-haiku-4-5 takes over/,
    );
    expect(run.stdout).toContain('▸ stopped: max_output_tokens: output tokens 120 reached the limit of 100');
    expect(run.stdout).toMatch(/▸ report\n {2}│ stopped: max_output_tokens — /);
    expect(primary.requests).toHaveLength(3); // three attempts, then the fallback
    expect(fallback.requests).toHaveLength(3);
    expect(await readdir(join(dir, 'boxes'))).toEqual([]); // the sandbox was closed

    const summary = summarizeSessionLog(readSessionLog(logPath));
    expect(summary).toMatchObject({
      task: 'keep working',
      steps: 3,
      models: ['anthropic:claude-haiku-4-5'],
      stop: { reason: 'max_output_tokens' },
      usage: { inputTokens: 300, outputTokens: 120 },
      retries: 2,
      toolCalls: { exec: { calls: 2, failed: 0 } },
    });
    expect(summary.fallbacks).toHaveLength(1);
    expect(await readFile(logPath, 'utf8')).not.toContain('fallback-secret-key');
  } finally {
    await Promise.all([primary.close(), fallback.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}, 180_000);

it('stops at the kill file with a report and exit 1, and the sandbox is closed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'agentbox-runner-kill-'));
  try {
    const killFile = join(dir, 'STOP');
    await writeFile(killFile, '');
    const args = ['--config', JSON.stringify({ root: join(dir, 'boxes') }), '--kill-file', killFile];
    const run = await runner(args, {});
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`▸ stopped: kill_switch: kill switch: kill file ${killFile} appeared`);
    expect(run.stdout).toMatch(/▸ report\n(?: {2}│ .*\n)* {2}│ the sandbox was closed\n/);
    expect(await readdir(join(dir, 'boxes'))).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 180_000);
