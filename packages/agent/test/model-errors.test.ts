/** How a model endpoint that cannot be used fails: typed, naming the URL, the cause and what to do. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentboxError, InvalidArgumentError } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletionsModel } from '../src/index.js';

const ask = { messages: [{ role: 'user' as const, content: 'hi' }], tools: [] };

async function failure(promise: Promise<unknown>): Promise<AgentboxError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AgentboxError);
  return error as AgentboxError;
}

/** A loopback port with nothing listening on it: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('an unreachable model endpoint', () => {
  it('is MODEL_UNAVAILABLE naming the URL, ECONNREFUSED and what to do, not a raw fetch TypeError', async () => {
    const port = await closedPort();
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const err = await failure(chatCompletionsModel({ baseUrl, model: 'm' }).complete(ask));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`${baseUrl}/chat/completions`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toMatch(/Check that the model server is running/);
    const json = JSON.parse(JSON.stringify(err));
    expect(json).toMatchObject({
      name: 'ModelUnavailableError',
      code: 'MODEL_UNAVAILABLE',
      backend: 'model',
      operation: 'complete',
      url: `${baseUrl}/chat/completions`,
    });
    expect(JSON.stringify(json.cause)).toContain('ECONNREFUSED');
  });

  it('a request with no answer in time is MODEL_UNAVAILABLE saying how long it waited', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    try {
      const model = chatCompletionsModel({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        model: 'm',
        requestTimeoutMs: 200,
      });
      const err = await failure(model.complete(ask));
      expect(err.code).toBe('MODEL_UNAVAILABLE');
      expect(err.message).toMatch(/gave no answer within 200 ms/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('an aborted request is ABORTED', async () => {
    const port = await closedPort();
    const model = chatCompletionsModel({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm' });
    const err = await failure(model.complete({ ...ask, signal: AbortSignal.abort() }));
    expect(err.code).toBe('ABORTED');
  });
});

describe('a model endpoint that answers with an error', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const status = Number(/\/s(\d+)\//.exec(req.url ?? '')?.[1] ?? 200);
      res.statusCode = status;
      res.end(status === 200 ? '<html>not an API</html>' : `{"error":"status ${status}"}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  const complete = (status: number) =>
    failure(chatCompletionsModel({ baseUrl: `${base}/s${status}/v1`, model: 'm' }).complete(ask));

  it('maps each status to the typed error a caller acts on, with what to do', async () => {
    const auth = await complete(401);
    expect(auth.code).toBe('AUTHENTICATION');
    expect(auth.message).toMatch(/refused the credentials \(401\).*Check the API key/);
    const missing = await complete(404);
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toMatch(/often \/v1/);
    const busy = await complete(503);
    expect(busy.code).toBe('MODEL_UNAVAILABLE');
    expect(busy.retryable).toBe(true);
    const refused = await complete(400);
    expect(refused.code).toBe('INVALID_ARGUMENT');
    expect((refused as InvalidArgumentError).issues).toEqual(['request: 400: {"error":"status 400"}']);
    const notApi = await complete(200);
    expect(notApi.code).toBe('UNSUPPORTED');
    expect(notApi.message).toMatch(/did not answer in the chat-completions format/);
  });
});

describe('chatCompletionsModel options', () => {
  it('refuses a misspelled key and a base URL that is not http(s)', () => {
    expect(() =>
      chatCompletionsModel({ baseURL: 'http://x/v1', model: 'm' } as never as {
        baseUrl: string;
        model: string;
      }),
    ).toThrow(/baseURL: unknown key \(did you mean "baseUrl"\?\)/);
    let err: unknown;
    try {
      chatCompletionsModel({ baseUrl: 'localhost:8000', model: 'm' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).issues).toEqual(['baseUrl: must be an http:// or https:// URL']);
  });
});
