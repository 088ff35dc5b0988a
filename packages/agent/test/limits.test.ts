/**
 * Hard stops: steps, tokens, estimated cost, wall-clock time, and the kill switch (a file that
 * appears, a process signal). Each ends the run with a report instead of an error, and the
 * sandbox is closed: by the caller's `await using` for a budget, by the loop for the kill switch.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import '@agentbox/backend-local';
import { type FakeModelServer, type FakeStep, startFakeModelServer } from '@agentbox/emulators';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AgentRun,
  anthropicModel,
  formatRunReport,
  openaiModel,
  priceOf,
  type RunAgentOptions,
  readSessionLog,
  runAgent,
  SessionLog,
  scriptedModel,
} from '../src/index.js';

const servers: FakeModelServer[] = [];
const roots: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'agentbox-limits-'));
  roots.push(root);
  return root;
}

/** A model that never stops calling a tool: only a limit ends its run. */
const endless = (call: { name: string; arguments: unknown }): FakeStep[] =>
  Array.from({ length: 50 }, () => ({ toolCalls: [call], usage: { inputTokens: 1000, outputTokens: 200 } }));

/** Runs on a fresh local sandbox under `root`, closed on the way out; the log is returned read back. */
async function runUnder(root: string, options: Omit<RunAgentOptions, 'sandbox' | 'task' | 'log'>) {
  const logPath = join(root, 'session.jsonl');
  const log = new SessionLog(logPath);
  let run: AgentRun;
  {
    await using sandbox = await openSandbox({ backend: 'local', config: { root: join(root, 'boxes') } });
    run = await runAgent({ sandbox, task: 't', log, ...options });
  }
  log.close();
  // Closed: nothing is left of the sandbox on the host.
  expect(await readdir(join(root, 'boxes'))).toEqual([]);
  return { run, log: readSessionLog(logPath).entries };
}

describe('budget stops, through the SDKs against fake servers', () => {
  it('an output-token budget stops the run before the calls of the turn that used it up', async () => {
    const server = await startFakeModelServer({
      api: 'anthropic',
      steps: endless({ name: 'exec', arguments: { command: 'echo step >> steps.txt' } }),
    });
    servers.push(server);
    const root = await freshRoot();
    const model = anthropicModel({ baseUrl: server.url, apiKey: server.apiKey, model: 'claude-haiku-4-5' });
    const { run, log } = await runUnder(root, { model, limits: { maxOutputTokens: 500 } });
    expect(run.stop.reason).toBe('max_output_tokens');
    expect(run.stop.message).toBe('output tokens 600 reached the limit of 500');
    expect(run).toMatchObject({ finished: false, steps: 3, usage: { inputTokens: 3000, outputTokens: 600 } });
    // Each request asked for no more output than what was left of the budget.
    expect(server.requests.map((r) => r.body.max_tokens)).toEqual([500, 300, 100]);
    // Two turns' commands ran; the third turn's did not.
    expect(log.filter((e) => e.type === 'tool_result')).toHaveLength(2);
    expect(log.at(-1)).toMatchObject({ type: 'run_end', reason: 'max_output_tokens' });
    expect(formatRunReport(run)).toMatch(
      /^stopped: max_output_tokens — output tokens 600 reached the limit of 500\n/,
    );
  });

  it('an estimated-cost budget stops the run, with an overridden price', async () => {
    const server = await startFakeModelServer({
      api: 'openai',
      steps: endless({ name: 'list_dir', arguments: {} }),
    });
    servers.push(server);
    const root = await freshRoot();
    const model = openaiModel({ baseUrl: server.url, apiKey: server.apiKey, model: 'house-model' });
    // 1000 in + 200 out per turn at $1/$5 per million = $0.002 a turn.
    const prices = { 'house-model': { inputPerMillionUsd: 1, outputPerMillionUsd: 5 } };
    const { run } = await runUnder(root, { model, prices, limits: { maxCostUsd: 0.005 } });
    expect(run.stop.reason).toBe('max_cost');
    expect(run.steps).toBe(3);
    expect(run.costUsd).toBeCloseTo(0.006, 10);
    expect(run.stop.message).toBe('estimated cost $0.0060 reached the limit of $0.0050');
  });

  it('a cost budget with a model that has no price stops at once rather than run uncapped', async () => {
    const server = await startFakeModelServer({
      api: 'openai',
      steps: endless({ name: 'list_dir', arguments: {} }),
    });
    servers.push(server);
    const model = openaiModel({ baseUrl: server.url, apiKey: server.apiKey, model: 'unpriced-model' });
    const { run } = await runUnder(await freshRoot(), { model, limits: { maxCostUsd: 1 } });
    expect(run.stop).toEqual({
      reason: 'max_cost',
      message: 'a model without a price answered, so the cost limit cannot be kept',
    });
    expect(run.steps).toBe(1);
    expect(run.costUsd).toBeUndefined();
  });

  it('a wall-clock limit stops a command that is still running and ends the run with a report', async () => {
    const root = await freshRoot();
    const model = scriptedModel([
      { content: '', toolCalls: [{ id: '1', name: 'exec', arguments: { command: 'sleep 20' } }] },
    ]);
    const started = Date.now();
    const { run, log } = await runUnder(root, { model, limits: { maxWallClockMs: 700 } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.stop).toEqual({ reason: 'wall_clock', message: 'the run took its 700 ms of wall-clock time' });
    expect(log.at(-1)).toMatchObject({ type: 'run_end', reason: 'wall_clock' });
  });

  it('max steps is a stop with a report too', async () => {
    const model = scriptedModel(
      Array(10).fill({ content: '', toolCalls: [{ id: 'x', name: 'exec', arguments: { command: 'true' } }] }),
    );
    const { run } = await runUnder(await freshRoot(), { model, limits: { maxSteps: 2 } });
    expect(run).toMatchObject({
      finished: false,
      steps: 2,
      stop: { reason: 'max_steps', message: 'the model used all 2 steps' },
    });
  });

  it('refuses a limit that is not a positive number, or misspelled, with a typed error', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const model = scriptedModel([]);
    const bad = await runAgent({
      sandbox,
      model,
      task: 't',
      limits: { maxCostUsd: -1, maxStep: 3 } as never,
    }).catch((e: unknown) => e);
    expect(bad).toMatchObject({
      code: 'INVALID_ARGUMENT',
      issues: [
        'limits.maxCostUsd: must be a positive number',
        expect.stringMatching(/^limits\.maxStep: unknown limit/),
      ],
    });
  });

  it('prices models by their longest matching prefix', () => {
    expect(priceOf('anthropic:claude-sonnet-4-20250514')).toEqual({
      inputPerMillionUsd: 3,
      outputPerMillionUsd: 15,
    });
    expect(priceOf('openai:gpt-4o-mini-2024-07-18')?.inputPerMillionUsd).toBe(0.15);
    expect(priceOf('gpt-4o-2024-08-06')?.inputPerMillionUsd).toBe(2.5);
    expect(priceOf('llama-3')).toBeUndefined();
  });
});

describe('the kill switch', () => {
  it('a file that appears stops the loop at its next step and closes the sandbox', async () => {
    const root = await freshRoot();
    const stopFile = join(root, 'STOP');
    await using sandbox = await openSandbox({ backend: 'local', config: { root: join(root, 'boxes') } });
    let turns = 0;
    const model = scriptedModel(
      Array.from({ length: 20 }, () => () => {
        turns++;
        return {
          content: '',
          toolCalls: [{ id: String(turns), name: 'exec', arguments: { command: 'true' } }],
        };
      }),
    );
    const run = await runAgent({
      sandbox,
      model,
      task: 't',
      killSwitch: { file: stopFile },
      onEvent: (e) => {
        if (e.type === 'tool' && e.step === 3) writeFileSync(stopFile, '');
      },
    });
    expect(run.stop.reason).toBe('kill_switch');
    expect(run.stop.message).toBe(`kill switch: kill file ${stopFile} appeared`);
    expect(turns).toBe(3); // the file appeared during step 3: step 4 never asked the model
    expect(run.steps).toBe(3);
    expect(run.sandboxClosed).toBe(true);
    expect(await readdir(join(root, 'boxes'))).toEqual([]);
    await expect(sandbox.exec('true')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    expect(formatRunReport(run)).toContain('the sandbox was closed');
  });

  it('a process signal stops the loop at its next step and closes the sandbox; the listener goes with the run', async () => {
    const server = await startFakeModelServer({
      api: 'openai',
      steps: endless({ name: 'exec', arguments: { command: 'true' } }),
    });
    servers.push(server);
    await using sandbox = await openSandbox({ backend: 'local' });
    const before = process.listenerCount('SIGUSR2');
    const model = openaiModel({ baseUrl: server.url, apiKey: server.apiKey, model: 'gpt-4o' });
    const run = await runAgent({
      sandbox,
      model,
      task: 't',
      killSwitch: { signals: ['SIGUSR2'] },
      onEvent: (e) => {
        if (e.type === 'tool' && e.step === 2) process.kill(process.pid, 'SIGUSR2');
      },
    });
    expect(run.stop).toEqual({ reason: 'kill_switch', message: 'kill switch: signal SIGUSR2' });
    expect(run.steps).toBeLessThanOrEqual(3); // a signal arrives asynchronously: step 3 may have begun
    expect(run.sandboxClosed).toBe(true);
    await expect(sandbox.exec('true')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });
});
