/**
 * Local HTTP servers that speak the OpenAI chat-completions and the Anthropic messages APIs with
 * scripted answers, for testing model clients (the official SDKs) offline. Loopback only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpFailure, readJson, sendJson } from '../http.js';
import { anthropicWire } from './anthropic-wire.js';
import { openaiWire } from './openai-wire.js';
import { type FakeReply, type FakeRequest, FakeScript, type FakeStep } from './script.js';

export type FakeModelApi = 'openai' | 'anthropic';

export interface FakeModelServerOptions {
  api: FakeModelApi;
  /** The answers, in order. */
  steps?: readonly FakeStep[];
  /** What every request after the script gets (default: a final answer "done"). */
  after?: FakeReply;
  /** The key clients must send (default `test-key`); a wrong one gets 401. */
  apiKey?: string;
  /** Loopback only: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  port?: number;
}

export interface FakeModelServer {
  api: FakeModelApi;
  /** The SDK's base URL: `http://127.0.0.1:PORT/v1` for openai, `http://127.0.0.1:PORT` for anthropic. */
  url: string;
  apiKey: string;
  /** Every request received, in order (also those answered with an error). */
  requests: FakeRequest[];
  script: FakeScript;
  close(): Promise<void>;
}

/** How a wire format reads requests and writes answers. */
export interface Wire {
  path: string;
  authorized(req: IncomingMessage, apiKey: string): boolean;
  /** Why the conversation is malformed for this API, or undefined if it is fine. */
  check(body: Record<string, unknown>): string | undefined;
  reply(reply: Extract<FakeReply, { text?: string }>, body: Record<string, unknown>): unknown;
  error(status: number, message: string): unknown;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startFakeModelServer(options: FakeModelServerOptions): Promise<FakeModelServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`the fake model server listens on loopback only, not on ${host}`);
  const wire: Wire = options.api === 'openai' ? openaiWire : anthropicWire;
  const apiKey = options.apiKey ?? 'test-key';
  const script = new FakeScript(options.steps ?? [], options.after);
  const requests: FakeRequest[] = [];

  async function answer(
    reply: FakeReply,
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ) {
    if ('hangUp' in reply) {
      req.socket.destroy();
      return;
    }
    if ('stallMs' in reply) {
      await new Promise((resolve) => setTimeout(resolve, reply.stallMs));
      if (res.destroyed || req.socket.destroyed) return;
      return answer(reply.then, req, res, body);
    }
    if ('status' in reply) {
      if (reply.retryAfter !== undefined) res.setHeader('retry-after', String(reply.retryAfter));
      if (reply.retryAfterMs !== undefined) res.setHeader('retry-after-ms', String(reply.retryAfterMs));
      sendJson(res, reply.status, wire.error(reply.status, reply.message ?? `scripted ${reply.status}`));
      return;
    }
    sendJson(res, 200, wire.reply(reply, body));
  }

  const server = createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://fake');
        if (req.method !== 'POST' || url.pathname !== wire.path)
          throw new HttpFailure(
            404,
            `${req.method} ${url.pathname}: this fake serves POST ${wire.path} only`,
          );
        if (!wire.authorized(req, apiKey)) throw new HttpFailure(401, 'invalid API key');
        const body = await readJson(req);
        const request: FakeRequest = {
          at: Date.now(),
          method: req.method,
          path: url.pathname,
          headers: req.headers,
          body,
        };
        requests.push(request);
        if (body.stream === true) throw new HttpFailure(400, 'streaming is not served by this fake');
        const malformed = wire.check(body);
        if (malformed) throw new HttpFailure(400, malformed);
        await answer(script.next(request), req, res, body);
      } catch (error) {
        const status = error instanceof HttpFailure ? error.status : 500;
        if (!res.headersSent && !res.destroyed)
          sendJson(res, status, wire.error(status, (error as Error).message));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    api: options.api,
    url: options.api === 'openai' ? `${origin}/v1` : origin,
    apiKey,
    requests,
    script,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL where nothing listens (bound, then released), for "connection refused". */
export async function refusedModelUrl(api: FakeModelApi): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return api === 'openai' ? `http://127.0.0.1:${port}/v1` : `http://127.0.0.1:${port}`;
}
