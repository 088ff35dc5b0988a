import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openSandbox } from '@agentbox/core';
import '@agentbox/backend-local';
import { describe, expect, it } from 'vitest';
import {
  type AgentEvent,
  chatCompletionsModel,
  type Message,
  runAgent,
  scriptedModel,
  TOOLS,
} from '../src/index.js';

const call = (id: string, name: string, args: unknown) => ({ id, name, arguments: args });

describe('runAgent', () => {
  it('runs the tool calls of each turn in the sandbox and feeds results back', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const model = scriptedModel([
      { content: '', toolCalls: [call('1', 'write_file', { path: 'a.txt', content: 'hello' })] },
      { content: '', toolCalls: [call('2', 'exec', { command: 'cat a.txt; echo oops >&2; exit 3' })] },
      (messages) => ({ content: `saw: ${(messages.at(-1) as { content: string }).content}`, toolCalls: [] }),
    ]);
    const run = await runAgent({ sandbox, model, task: 'write a file' });
    expect(run.finished).toBe(true);
    expect(run.steps).toBe(3);
    expect(run.answer).toBe('saw: exit code: 3\nstdout:\nhello\nstderr:\noops\n');
  });

  it("reports each command's exit code in its tool event, so a failed command is not shown as a success", async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const events: AgentEvent[] = [];
    const model = scriptedModel([
      {
        content: '',
        toolCalls: [
          call('1', 'exec', { command: 'exit 0' }),
          call('2', 'exec', { command: 'no-such-program-here' }),
          call('3', 'write_file', { path: 'a.txt', content: 'x' }),
        ],
      },
    ]);
    await runAgent({ sandbox, model, task: 't', onEvent: (e) => events.push(e) });
    const tools = events.filter((e) => e.type === 'tool');
    expect(tools.map((e) => [e.ok, e.exitCode])).toEqual([
      [true, 0],
      [true, 127],
      [true, undefined],
    ]);
    expect('exitCode' in tools[2]!).toBe(false);
  });

  it('lets the model undo a destructive mistake with checkpoint and rollback', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    await sandbox.writeFile('src/main.c', 'int main() { return 0; }\n');
    let checkpointId = '';
    const model = scriptedModel([
      { content: '', toolCalls: [call('1', 'checkpoint', { label: 'before cleanup' })] },
      (messages) => {
        checkpointId = /checkpoint (\S+)/.exec((messages.at(-1) as { content: string }).content)![1]!;
        return { content: '', toolCalls: [call('2', 'exec', { command: 'rm -rf src' })] };
      },
      () => ({ content: '', toolCalls: [call('3', 'rollback', { id: checkpointId })] }),
    ]);
    await runAgent({ sandbox, model, task: 'clean up' });
    expect(await sandbox.readTextFile('src/main.c')).toBe('int main() { return 0; }\n');
  });

  it('turns bad tool calls and typed errors into results the model can read', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const events: string[] = [];
    const model = scriptedModel([
      {
        content: '',
        toolCalls: [
          call('1', 'format_disk', {}),
          call('2', 'exec', { command: 42 }),
          call('3', 'read_file', { path: 'missing.txt' }),
          call('4', 'exec', { command: 'echo partial; sleep 5', timeoutMs: 300 }),
        ],
      },
    ]);
    await runAgent({ sandbox, model, task: 't', onEvent: (e) => e.type === 'tool' && events.push(e.output) });
    expect(events[0]).toMatch(/^error: unknown tool "format_disk"/);
    expect(events[1]).toMatch(/^error: invalid arguments for exec: command:/);
    expect(events[2]).toMatch(/^error NOT_FOUND: /);
    expect(events[3]).toMatch(/^error TIMEOUT: [\s\S]*output before the timeout:\npartial\n/);
  });

  it('tells the model which argument key it misspelled and which tool it meant', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const events: string[] = [];
    const model = scriptedModel([
      {
        content: '',
        toolCalls: [
          call('1', 'exec', { command: 'true', timeoutMS: 5 }),
          call('2', 'read_fil', { path: 'a' }),
        ],
      },
    ]);
    await runAgent({ sandbox, model, task: 't', onEvent: (e) => e.type === 'tool' && events.push(e.output) });
    expect(events[0]).toBe(
      'error: invalid arguments for exec: timeoutMS: unknown key (did you mean "timeoutMs"?)',
    );
    expect(events[1]).toMatch(/^error: unknown tool "read_fil" \(did you mean "read_file"\?\)/);
  });

  it('an aborted run is a typed ABORTED error', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const err = await runAgent({
      sandbox,
      model: scriptedModel([]),
      task: 't',
      signal: AbortSignal.abort(),
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ABORTED');
  });

  it('stops after maxSteps', async () => {
    await using sandbox = await openSandbox({ backend: 'local' });
    const loop = { content: '', toolCalls: [call('x', 'exec', { command: 'true' })] };
    const run = await runAgent({
      sandbox,
      model: scriptedModel(Array(10).fill(loop)),
      task: 't',
      maxSteps: 3,
    });
    expect(run).toMatchObject({ finished: false, steps: 3, answer: undefined });
  });
});

describe('chatCompletionsModel', () => {
  it('speaks the chat-completions protocol with function tools', async () => {
    const seen: { auth?: string; body: { messages: Message[]; tools: unknown[] } }[] = [];
    const server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body: JSON.parse(raw) });
        const first = seen.length === 1;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            choices: [
              {
                message: first
                  ? {
                      content: null,
                      tool_calls: [
                        {
                          id: 'c1',
                          type: 'function',
                          function: { name: 'exec', arguments: '{"command":"echo hi"}' },
                        },
                      ],
                    }
                  : { content: 'all done' },
              },
            ],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      await using sandbox = await openSandbox({ backend: 'local' });
      const model = chatCompletionsModel({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', apiKey: 'k' });
      const run = await runAgent({ sandbox, model, task: 'say hi' });
      expect(run.answer).toBe('all done');
      expect(seen[0]!.auth).toBe('Bearer k');
      expect(seen[0]!.body.tools).toHaveLength(Object.keys(TOOLS).length);
      const toolMessage = seen[1]!.body.messages.at(-1) as unknown as {
        role: string;
        tool_call_id: string;
        content: string;
      };
      expect(toolMessage).toEqual({
        role: 'tool',
        tool_call_id: 'c1',
        content: 'exit code: 0\nstdout:\nhi\n',
      });
    } finally {
      server.close();
    }
  });
});
