/** The session log: JSON lines of a run, secrets redacted, read back, summarised, and replayed. */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import '@agentbox/backend-local';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatSessionSummary,
  readSessionLog,
  redactText,
  replayModel,
  runAgent,
  SessionLog,
  scriptedModel,
  secretsFromEnv,
  summarizeSessionLog,
} from '../src/index.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentbox-log-'));
  dirs.push(dir);
  return dir;
}

const call = (id: string, name: string, args: unknown) => ({ id, name, arguments: args });

describe('redaction', () => {
  it('hides named secrets and secret-shaped tokens, and leaves ordinary text alone', () => {
    const text = [
      'key=my-own-secret-value',
      'OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx',
      'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig',
      'aws AKIAABCDEFGHIJKLMNOP',
      'gh ghp_abcdefghijklmnopqrstuvwxyz0123456789',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----',
      'DB_PASSWORD=hunter2hunter2',
      'the tokenizer counted 12 tokens',
    ].join('\n');
    expect(redactText(text, ['my-own-secret-value'])).toBe(
      [
        'key=[REDACTED]',
        'OPENAI_API_KEY=[REDACTED]',
        'Authorization: Bearer [REDACTED]',
        'aws [REDACTED]',
        'gh [REDACTED]',
        '[REDACTED]',
        'DB_PASSWORD=[REDACTED]',
        'the tokenizer counted 12 tokens',
      ].join('\n'),
    );
  });

  it('takes the values of secret-looking environment variables, not of others', () => {
    expect(
      secretsFromEnv({
        ANTHROPIC_API_KEY: 'abcdefgh12345',
        HOME: '/home/me',
        GITHUB_TOKEN: 'short',
        PATH: '/usr/bin',
      }),
    ).toEqual(['abcdefgh12345']);
  });
});

describe('the session log of a run', () => {
  it('records every turn, call, result, checkpoint and rollback, with secrets redacted', async () => {
    const dir = await freshDir();
    const path = join(dir, 'logs', 'run.jsonl');
    const secret = 'tok-0123456789abcdef';
    const log = new SessionLog(path, { secrets: [secret] });
    await using sandbox = await openSandbox({ backend: 'local' });
    let checkpointId = '';
    const model = scriptedModel([
      {
        content: 'write',
        toolCalls: [call('1', 'write_file', { path: 'cfg.env', content: `TOKEN=${secret}\n` })],
      },
      { content: 'save', toolCalls: [call('2', 'checkpoint', { label: 'before' })] },
      (messages) => {
        checkpointId = /checkpoint (\S+)/.exec((messages.at(-1) as { content: string }).content)![1]!;
        return {
          content: 'break',
          toolCalls: [call('3', 'exec', { command: `cat cfg.env; rm cfg.env; exit 2` })],
        };
      },
      () => ({ content: 'undo', toolCalls: [call('4', 'rollback', { id: checkpointId })] }),
      { content: 'done', toolCalls: [] },
    ]);
    // The model checkpoints itself here; automatic checkpoints have their own test.
    const run = await runAgent({ sandbox, model, task: `use ${secret}`, log, autoCheckpoint: false });
    log.close();
    expect(run.checkpoints).toEqual([{ id: checkpointId, label: 'before' }]);
    expect(run.rollbacks).toEqual([checkpointId]);

    const raw = await readFile(path, 'utf8');
    expect(raw).not.toContain(secret);
    expect(raw).toContain('[REDACTED]');
    const { entries, truncated } = readSessionLog(path);
    expect(truncated).toBe(false);
    expect(entries.map((e) => e.type)).toEqual([
      'run_start',
      ...['model_turn', 'tool_call', 'tool_result'],
      ...['model_turn', 'tool_call', 'tool_result', 'checkpoint'],
      ...['model_turn', 'tool_call', 'tool_result'],
      ...['model_turn', 'tool_call', 'tool_result', 'rollback'],
      'model_turn',
      'run_end',
    ]);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    const summary = summarizeSessionLog({ entries, truncated });
    expect(summary).toMatchObject({
      task: 'use [REDACTED]',
      steps: 5,
      toolCalls: {
        write_file: { calls: 1, failed: 0 },
        checkpoint: { calls: 1, failed: 0 },
        exec: { calls: 1, failed: 1 },
      },
      checkpoints: [{ id: checkpointId, label: 'before' }],
      rollbacks: [checkpointId],
      stop: { reason: 'finished' },
      models: ['scripted'],
    });
    const text = formatSessionSummary(summary);
    expect(text).toContain('ended: finished (the model answered)');
    expect(text).toContain('exec 1 (1 failed)');
    expect(text).toContain(`checkpoints: ${checkpointId} (before)`);
  });

  it('a last line cut short is reported, not fatal; a bad line elsewhere is an error naming it', async () => {
    const dir = await freshDir();
    const path = join(dir, 'cut.jsonl');
    const log = new SessionLog(path);
    log.write('run_start', { task: 't' });
    log.close();
    await appendFile(path, '{"ts":"2026-01-01T00:00:00Z","seq":2,"type":"model_tu');
    const read = readSessionLog(path);
    expect(read.truncated).toBe(true);
    expect(read.entries).toHaveLength(1);
    expect(formatSessionSummary(summarizeSessionLog(read))).toContain('no end in the log');

    await writeFile(path, 'not json\n{"ts":"x","seq":1,"type":"run_start"}\n');
    expect(() => readSessionLog(path)).toThrow(/cut\.jsonl:1: not a JSON line/);
    expect(() => readSessionLog(join(dir, 'missing.jsonl'))).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }),
    );
  });

  it('a session log plays again as a replay model, with the new checkpoint id for "$lastCheckpoint"', async () => {
    const dir = await freshDir();
    const script = join(dir, 'script.json');
    await writeFile(
      script,
      JSON.stringify({
        turns: [
          {
            content: 'write',
            toolCalls: [{ name: 'write_file', arguments: { path: 'a.txt', content: 'one' } }],
          },
          { toolCalls: [{ name: 'checkpoint', arguments: { label: 'c' } }] },
          { toolCalls: [{ name: 'exec', arguments: { command: 'echo two > a.txt' } }] },
          { toolCalls: [{ name: 'rollback', arguments: { id: '$lastCheckpoint' } }] },
          { content: 'replayed' },
        ],
      }),
    );
    const logPath = join(dir, 'first.jsonl');
    {
      await using sandbox = await openSandbox({ backend: 'local' });
      const log = new SessionLog(logPath);
      const run = await runAgent({ sandbox, model: replayModel(script), task: 't', log });
      log.close();
      expect(run.answer).toBe('replayed');
      expect(await sandbox.readTextFile('a.txt')).toBe('one');
    }
    // The log of that run drives a second one the same way.
    await using sandbox = await openSandbox({ backend: 'local' });
    const again = await runAgent({ sandbox, model: replayModel(logPath), task: 't' });
    expect(again).toMatchObject({ answer: 'replayed', steps: 5 });
    expect(await sandbox.readTextFile('a.txt')).toBe('one');
    expect(again.rollbacks).toHaveLength(1);
    expect(again.rollbacks[0]).toBe(again.checkpoints[0]!.id);
  });

  it('a replay file that is not valid is a typed error naming the problem', async () => {
    const dir = await freshDir();
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ turns: [{ toolCalls: [{ arguments: {} }] }] }));
    expect(() => replayModel(path)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => replayModel(join(dir, 'none.json'))).toThrow(/cannot read the replay file/);
  });
});
