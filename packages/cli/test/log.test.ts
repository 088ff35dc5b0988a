/** `agentbox log summarize FILE`, run as a child process on logs written by the agent's SessionLog. */
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionLog } from '@agentbox/agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuiltCli, PACKAGE_DIR } from './built-cli.ts';

beforeAll(ensureBuiltCli, 180_000);

function agentbox(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A log like a run that took a checkpoint, fell back to another model, and hit its cost limit. */
async function writeLog(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentbox-cli-log-'));
  dirs.push(dir);
  const path = join(dir, 'run.jsonl');
  const log = new SessionLog(path);
  log.write('run_start', { task: 'fix the build' });
  log.write('model_fallback', {
    step: 1,
    from: 'openai:gpt-4o',
    to: 'anthropic:claude-sonnet-4',
    error: 'answered 429',
  });
  log.write('model_turn', {
    step: 1,
    model: 'anthropic:claude-sonnet-4',
    content: '',
    toolCalls: [],
    usage: { inputTokens: 1200, outputTokens: 80 },
  });
  log.write('tool_call', { step: 1, id: 'a', name: 'checkpoint', arguments: {} });
  log.write('tool_result', {
    step: 1,
    id: 'a',
    name: 'checkpoint',
    ok: true,
    output: 'checkpoint cp-1 (3 entries)',
  });
  log.write('checkpoint', { step: 1, id: 'cp-1', label: 'before make' });
  log.write('tool_result', { step: 1, id: 'b', name: 'exec', ok: true, exitCode: 2, output: 'exit code: 2' });
  log.write('run_end', {
    reason: 'max_cost',
    message: 'estimated cost $0.0048 reached the limit of $0.0040',
    costUsd: 0.0048,
    durationMs: 2500,
  });
  log.close();
  return path;
}

describe('agentbox log summarize', () => {
  it('prints what the run did, exit 1 for a run a limit stopped; --json gives the same as an object', async () => {
    const path = await writeLog();
    const run = await agentbox(['log', 'summarize', path]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      [
        'task: fix the build',
        'ended: max_cost (estimated cost $0.0048 reached the limit of $0.0040)',
        'steps: 1, 2.5 s',
        'models: anthropic:claude-sonnet-4',
        'tokens: 1200 in, 80 out, estimated cost $0.0048',
        'tool calls: checkpoint 1, exec 1 (1 failed)',
        'checkpoints: cp-1 (before make)',
        'model retries: 0; fallbacks: openai:gpt-4o → anthropic:claude-sonnet-4 (answered 429)',
        '',
      ].join('\n'),
    );
    const json = await agentbox(['log', 'summarize', path, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      task: 'fix the build',
      stop: { reason: 'max_cost' },
      costUsd: 0.0048,
    });
  }, 120_000);

  it('a finished run is exit 0; a missing file, a bad line and a missing action are errors', async () => {
    const path = await writeLog();
    await appendFile(
      path,
      '{"ts":"t","seq":9,"type":"run_end","reason":"finished","message":"the model answered"}\n',
    );
    expect((await agentbox(['log', 'summarize', path])).code).toBe(0);

    const missing = await agentbox(['log', 'summarize', join(tmpdir(), 'no-such-agentbox-log.jsonl')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/NOT_FOUND.*no session log at/);

    await appendFile(path, 'garbage\n{"ts":"t","seq":10,"type":"x"}\n');
    const bad = await agentbox(['log', 'summarize', path]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/run\.jsonl:10: not a JSON line/);

    const usage = await agentbox(['log']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('summarize FILE');
  }, 120_000);
});
