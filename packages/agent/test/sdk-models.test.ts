/**
 * The loop end to end through the official SDKs (openai, @anthropic-ai/sdk) against local fake
 * servers that speak each provider's HTTP API, on the local backend: a task that edits files and
 * runs commands completes; the fallback takes over when the primary answers 429 or 500 or is not
 * there at all; a retry-after the primary asks for is honoured.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import '@agentbox/backend-local';
import {
  type FakeModelApi,
  type FakeModelServer,
  type FakeStep,
  refusedModelUrl,
  startFakeModelServer,
} from '@agentbox/emulators';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AgentEvent,
  anthropicModel,
  failoverModel,
  type Model,
  openaiModel,
  readSessionLog,
  runAgent,
  SessionLog,
  summarizeSessionLog,
} from '../src/index.js';

const servers: FakeModelServer[] = [];
const roots: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function fake(api: FakeModelApi, steps: FakeStep[]): Promise<FakeModelServer> {
  const server = await startFakeModelServer({ api, steps });
  servers.push(server);
  return server;
}

function modelFor(server: FakeModelServer, name = 'test-model'): Model {
  return server.api === 'openai'
    ? openaiModel({ baseUrl: server.url, apiKey: server.apiKey, model: name })
    : anthropicModel({ baseUrl: server.url, apiKey: server.apiKey, model: name });
}

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'agentbox-agent-'));
  roots.push(root);
  return root;
}

/** A task in five turns: write a script, run it, list, search, then answer from what it saw. */
const EDIT_AND_RUN: FakeStep[] = [
  {
    text: 'Writing the script.',
    toolCalls: [{ name: 'write_file', arguments: { path: 'app/hello.sh', content: 'echo "hello $1"\n' } }],
  },
  {
    toolCalls: [
      { name: 'exec', arguments: { command: 'sh app/hello.sh world > app/out.txt && cat app/out.txt' } },
    ],
  },
  {
    toolCalls: [
      { name: 'list_dir', arguments: { path: 'app' } },
      { name: 'search_files', arguments: { pattern: 'hel+o', path: 'app', glob: '*.sh' } },
    ],
  },
  (request) => {
    const last = JSON.stringify(request.body.messages);
    return { text: last.includes('hello world') ? 'The script printed hello world.' : 'It did not work.' };
  },
];

describe.each(['openai', 'anthropic'] as const)('through the %s SDK', (api) => {
  it('a task that edits files and runs commands completes, with the provider tool-call format on the wire', async () => {
    const server = await fake(api, EDIT_AND_RUN);
    const root = await freshRoot();
    const logPath = join(root, 'logs', 'session.jsonl');
    const log = new SessionLog(logPath, { secrets: [server.apiKey] });
    const events: AgentEvent[] = [];
    {
      await using sandbox = await openSandbox({ backend: 'local', config: { root } });
      const run = await runAgent({
        sandbox,
        model: modelFor(server),
        task: 'write and run hello',
        log,
        onEvent: (e) => events.push(e),
      });
      expect(run.stop.reason).toBe('finished');
      expect(run.answer).toBe('The script printed hello world.');
      expect(run.steps).toBe(4);
      expect(await sandbox.readTextFile('app/out.txt')).toBe('hello world\n');
      expect(run.usage.inputTokens).toBeGreaterThan(0);
      expect(run.usage.outputTokens).toBeGreaterThan(0);
      const tools = events.flatMap((e) => (e.type === 'tool' ? [[e.call.name, e.ok, e.exitCode]] : []));
      expect(tools).toEqual([
        ['write_file', true, undefined],
        ['exec', true, 0],
        ['list_dir', true, undefined],
        ['search_files', true, undefined],
      ]);
      const search = events.find((e) => e.type === 'tool' && e.call.name === 'search_files');
      expect((search as { output: string }).output).toBe('app/hello.sh:1:echo "hello $1"\n');
    }
    log.close();
    expect(await readdir(root)).toEqual(['logs']); // the sandbox's folder went with it

    // What the SDK sent: the provider's own shape for tools, tool calls and their results.
    expect(server.requests).toHaveLength(4);
    const first = server.requests[0]!.body;
    const third = server.requests[2]!.body as { messages: Record<string, unknown>[] };
    if (api === 'openai') {
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${server.apiKey}`);
      expect(first.tools).toContainEqual(
        expect.objectContaining({
          type: 'function',
          function: expect.objectContaining({ name: 'search_files' }),
        }),
      );
      expect(third.messages.at(-1)).toMatchObject({
        role: 'tool',
        content: expect.stringContaining('exit code: 0'),
      });
      expect(third.messages.at(-2)).toMatchObject({
        role: 'assistant',
        tool_calls: [
          { type: 'function', function: { name: 'exec', arguments: expect.stringContaining('"command"') } },
        ],
      });
    } else {
      // The key as x-api-key, or as a bearer token (what SDK 1.x sends).
      const headers = server.requests[0]!.headers;
      expect(headers['x-api-key'] ?? String(headers.authorization).replace(/^Bearer /, '')).toBe(
        server.apiKey,
      );
      expect(first.system).toMatch(/agent working in a sandbox/);
      expect(first.tools).toContainEqual(
        expect.objectContaining({ name: 'search_files', input_schema: expect.any(Object) }),
      );
      expect(third.messages.at(-2)).toMatchObject({
        role: 'assistant',
        content: [{ type: 'tool_use', name: 'exec' }],
      });
      expect(third.messages.at(-1)).toMatchObject({
        role: 'user',
        content: [{ type: 'tool_result', content: expect.stringContaining('exit code: 0') }],
      });
      // Two calls in one turn: their two results travel together in the next user message.
      const fourth = server.requests[3]!.body as { messages: { content: unknown[] }[] };
      expect(fourth.messages.at(-1)!.content).toHaveLength(2);
    }

    // The session log has every turn, call and result, and no key.
    const text = await import('node:fs/promises').then((fs) => fs.readFile(logPath, 'utf8'));
    expect(text).not.toContain(server.apiKey);
    const summary = summarizeSessionLog(readSessionLog(logPath));
    expect(summary).toMatchObject({
      task: 'write and run hello',
      steps: 4,
      models: [`${api}:test-model`],
      stop: { reason: 'finished' },
      toolCalls: {
        write_file: { calls: 1, failed: 0 },
        exec: { calls: 1, failed: 0 },
        list_dir: { calls: 1 },
        search_files: { calls: 1 },
      },
    });
  });
});

/** A final answer on the first turn, from whichever model is asked. */
const ANSWER = (who: string): FakeStep[] => [{ text: `answered by ${who}` }];

describe('a primary and a fallback', () => {
  const quickRetry = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterMs: 5_000 };

  it.each([
    ['429 with a retry-after longer than we wait', { status: 429, retryAfter: 3600 }, 1],
    ['500 twice', { status: 500 }, 2],
  ] as const)(
    'the fallback takes over when the primary answers %s, and the log says so',
    async (_label, failure, primaryRequests) => {
      const primary = await fake('openai', [failure, failure]);
      const fallback = await fake('anthropic', ANSWER('the fallback'));
      const root = await freshRoot();
      const log = new SessionLog(join(root, 'session.jsonl'));
      const events: AgentEvent[] = [];
      await using sandbox = await openSandbox({ backend: 'local', config: { root } });
      const model = failoverModel({
        primary: modelFor(primary, 'gpt-4o-mini'),
        fallback: modelFor(fallback, 'claude-haiku-4-5'),
        retry: quickRetry,
      });
      const run = await runAgent({ sandbox, model, task: 't', log, onEvent: (e) => events.push(e) });
      log.close();
      expect(run.answer).toBe('answered by the fallback');
      expect(primary.requests).toHaveLength(primaryRequests);
      expect(fallback.requests).toHaveLength(1);
      const notices = events.flatMap((e) => (e.type === 'model' ? [e.notice] : []));
      expect(notices.at(-1)).toMatchObject({
        type: 'fallback',
        from: 'openai:gpt-4o-mini',
        to: 'anthropic:claude-haiku-4-5',
        error: expect.stringContaining(`answered ${failure.status}`),
      });
      const summary = summarizeSessionLog(readSessionLog(join(root, 'session.jsonl')));
      expect(summary.fallbacks).toHaveLength(1);
      expect(summary.models).toEqual(['anthropic:claude-haiku-4-5']);
      expect(summary.retries).toBe(primaryRequests - 1);
    },
  );

  it('the fallback takes over when nothing listens where the primary should be', async () => {
    const fallback = await fake('openai', ANSWER('the fallback'));
    await using sandbox = await openSandbox({ backend: 'local' });
    const primary = openaiModel({ baseUrl: await refusedModelUrl('openai'), apiKey: 'k', model: 'gpt-4o' });
    const notices: unknown[] = [];
    const run = await runAgent({
      sandbox,
      model: failoverModel({ primary, fallback: modelFor(fallback), retry: quickRetry }),
      task: 't',
      onEvent: (e) => e.type === 'model' && notices.push(e.notice),
    });
    expect(run.answer).toBe('answered by the fallback');
    expect(notices.at(-1)).toMatchObject({
      type: 'fallback',
      error: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('waits as long as a 429 retry-after asks before asking the same model again', async () => {
    const primary = await fake('anthropic', [
      { status: 429, retryAfter: 1 },
      { text: 'answered after waiting' },
    ]);
    const fallback = await fake('openai', ANSWER('the fallback'));
    await using sandbox = await openSandbox({ backend: 'local' });
    const run = await runAgent({
      sandbox,
      model: failoverModel({ primary: modelFor(primary), fallback: modelFor(fallback), retry: quickRetry }),
      task: 't',
    });
    expect(run.answer).toBe('answered after waiting');
    expect(fallback.requests).toHaveLength(0);
    const [a, b] = primary.requests;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(950);
  });

  it('a refused key is not a reason to fall back: the run fails with AUTHENTICATION', async () => {
    const primary = await fake('openai', []);
    const fallback = await fake('anthropic', ANSWER('the fallback'));
    await using sandbox = await openSandbox({ backend: 'local' });
    const wrongKey = openaiModel({ baseUrl: primary.url, apiKey: 'wrong', model: 'm' });
    const error = await runAgent({
      sandbox,
      model: failoverModel({ primary: wrongKey, fallback: modelFor(fallback) }),
      task: 't',
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('AUTHENTICATION');
    expect(fallback.requests).toHaveLength(0);
  });

  it('without a fallback, a primary that stays down is MODEL_UNAVAILABLE with the status', async () => {
    const primary = await fake('anthropic', [{ status: 503 }, { status: 503 }]);
    await using sandbox = await openSandbox({ backend: 'local' });
    const error = await runAgent({
      sandbox,
      model: failoverModel({ primary: modelFor(primary), retry: quickRetry }),
      task: 't',
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'MODEL_UNAVAILABLE', httpStatus: 503, retryable: true });
    expect(primary.requests).toHaveLength(2);
  });
});
