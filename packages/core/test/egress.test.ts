/**
 * Core's egress kit: how an allowlist maps onto a loopback-only jail, and that the relay only
 * ever dials entries of its own allowlist, whatever the forwarder asks for, and logs what the
 * forwarder reports as denied.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EgressDenial,
  EgressRelay,
  egressHostsFile,
  forwarderConfig,
  parseEgressAllowlist,
} from '../src/backend.js';

const context = { backend: 'test' };

describe('parseEgressAllowlist', () => {
  it('gives each host name a loopback stand-in; loopback literals and localhost keep their own', () => {
    const entries = parseEgressAllowlist(
      ['api.example.com:443', 'api.example.com:80', 'Other.example:443', '127.0.0.1:8080', 'localhost:9000'],
      'test',
      context,
    );
    expect(entries).toEqual([
      { index: 0, host: 'api.example.com', port: 443, address: '127.77.0.1' },
      { index: 1, host: 'api.example.com', port: 80, address: '127.77.0.1' },
      { index: 2, host: 'other.example', port: 443, address: '127.77.0.2' },
      { index: 3, host: '127.0.0.1', port: 8080, address: '127.0.0.1' },
      { index: 4, host: 'localhost', port: 9000, address: '127.0.0.1' },
    ]);
    expect(egressHostsFile(entries)).toContain('127.77.0.1\tapi.example.com\n127.77.0.2\tother.example\n');
    expect(JSON.parse(forwarderConfig(entries)).names).toEqual({
      'api.example.com': '127.77.0.1',
      'other.example': '127.77.0.2',
      localhost: '127.0.0.1',
    });
  });

  it('refuses what a loopback-only jail cannot stand in for, with a typed error', () => {
    for (const bad of ['10.0.0.1:80', '[::1]:80', 'host:0', '127.77.0.1:80']) {
      expect(() => parseEgressAllowlist([bad], 'test', context)).toThrow(
        expect.objectContaining({ code: 'POLICY_NOT_ENFORCEABLE' }),
      );
    }
  });
});

describe('EgressRelay', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentbox-relay-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const entries = parseEgressAllowlist(['allowed.example:443'], 'test', context);

  it('dials only its own entries: an index out of the list is closed without dialling anything', async () => {
    const dialled: string[] = [];
    const received: string[] = [];
    const relay = new EgressRelay({
      sandboxId: 'sb',
      entries,
      connect: async (host, port) => {
        dialled.push(`${host}:${port}`);
        // A destination that takes what it is sent and says nothing.
        return new Duplex({
          read() {},
          write(chunk, _encoding, done) {
            received.push(String(chunk));
            done();
          },
        });
      },
    });
    for (const header of ['c 1\n', 'c -1\n', 'c evil.example:22\n', 'x\n']) {
      const stream = new PassThrough();
      relay.handle(stream);
      stream.write(header);
      await new Promise((r) => setTimeout(r, 10));
      expect(stream.destroyed).toBe(true);
    }
    expect(dialled).toEqual([]);
    const ok = new PassThrough();
    relay.handle(ok);
    ok.write('c 0\nhello');
    await new Promise((r) => setTimeout(r, 10));
    expect(dialled).toEqual(['allowed.example:443']);
    expect(received.join('')).toBe('hello');
    ok.destroy();
  });

  it('logs each reported denial with time and sandbox id, to the file and the callback', async () => {
    const heard: EgressDenial[] = [];
    // Its directory is created with the first line.
    const logFile = join(dir, 'logs', 'denied.log');
    const relay = new EgressRelay({
      sandboxId: 'sb-1',
      entries,
      connect: () => Promise.reject(new Error('not used')),
      logFile,
      onDenied: (d) => heard.push(d),
    });
    for (const report of [
      { protocol: 'dns', destination: 'other.example' },
      { protocol: 'tcp', destination: '127.0.0.3:443' },
      { protocol: 'bogus', destination: 'x' },
    ]) {
      const stream = new PassThrough();
      relay.handle(stream);
      stream.end(`d ${JSON.stringify(report)}\n`);
    }
    await new Promise((r) => setTimeout(r, 10));
    await relay.flushed();
    const lines = (await readFile(logFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual(heard);
    expect(lines.map((d) => [d.sandboxId, d.protocol, d.destination])).toEqual([
      ['sb-1', 'dns', 'other.example'],
      ['sb-1', 'tcp', '127.0.0.3:443'],
    ]);
    for (const d of lines) expect(Date.parse(d.time)).toBeGreaterThan(0);
  });

  it('logs at most 50 denials a second; the next entry says how many were left out', async () => {
    const relay = new EgressRelay({
      sandboxId: 'sb-2',
      entries,
      connect: () => Promise.reject(new Error('x')),
    });
    const deny = (name: string) => {
      const stream = new PassThrough();
      relay.handle(stream);
      stream.end(`d ${JSON.stringify({ protocol: 'dns', destination: name })}\n`);
    };
    // Start just after a second begins, so the burst stays within one second.
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    for (let i = 0; i < 80; i++) deny(`flood-${i}.example`);
    await new Promise((r) => setTimeout(r, 20));
    expect(relay.denials).toHaveLength(50);
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    deny('after.example');
    await new Promise((r) => setTimeout(r, 20));
    expect(relay.denials.at(-1)).toMatchObject({ destination: 'after.example', suppressed: 30 });
  });
});
