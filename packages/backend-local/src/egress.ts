/**
 * The network allowlist of isolation 'bwrap' (core's egress kit): the forwarder runs in the
 * jail's network namespace, the relay in this process behind a unix socket in the sandbox's
 * directory (outside the jail's view), and an allowed destination is dialled from this machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { SandboxUnavailableError } from '@agentbox/core';
import {
  EGRESS_RESOLV_CONF,
  EGRESS_TRUST_DIR,
  type EgressDenial,
  type EgressEntry,
  EgressRelay,
  type ErrorContext,
  egressHostsFile,
  FORWARDER_SCRIPT,
  forwarderConfig,
  type SecretBinding,
  type TlsTermination,
  tlsTrustFiles,
} from '@agentbox/core/backend';
import type { Jail } from './jail.js';

/** How long the forwarder may take to bind its listeners. */
const READY_TIMEOUT_MS = 10_000;

/** A unix socket's path must fit `sun_path` (108 bytes with its terminating zero). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Where the relay listens: in the sandbox's directory when the path fits a unix socket address,
 * else in a private (0700) folder under the system temp directory, removed on close.
 */
async function relaySocketPath(dir: string): Promise<{ path: string; ownDir: string | undefined }> {
  const inSandboxDir = join(dir, 'egress', 'relay.sock');
  if (Buffer.byteLength(inSandboxDir) <= MAX_SOCKET_PATH_BYTES)
    return { path: inSandboxDir, ownDir: undefined };
  const ownDir = await mkdtemp(join(tmpdir(), 'agentbox-relay-'));
  return { path: join(ownDir, 'relay.sock'), ownDir };
}

/**
 * Write the jail's /etc/hosts and /etc/resolv.conf into `dir` (before the jail starts), and with
 * TLS termination the trust files the jail sees in TRUST_DIR.
 */
export async function writeEgressFiles(
  dir: string,
  entries: readonly EgressEntry[],
  tls: TlsTermination | undefined,
): Promise<{ hostsFile: string; resolvConf: string; trustDir?: string }> {
  const at = join(dir, 'egress');
  await mkdir(at, { recursive: true, mode: 0o700 });
  const hostsFile = join(at, 'hosts');
  const resolvConf = join(at, 'resolv.conf');
  await writeFile(hostsFile, egressHostsFile(entries), { mode: 0o644 });
  await writeFile(resolvConf, EGRESS_RESOLV_CONF, { mode: 0o644 });
  if (!tls) return { hostsFile, resolvConf };
  const trustDir = join(at, 'trust');
  await mkdir(trustDir, { recursive: true, mode: 0o755 });
  const { files } = await tlsTrustFiles(tls, EGRESS_TRUST_DIR);
  for (const [name, text] of Object.entries(files))
    await writeFile(join(trustDir, name), text, { mode: 0o644 });
  return { hostsFile, resolvConf, trustDir };
}

function dial(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, autoSelectFamily: true, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export class LocalEgress {
  readonly relay: EgressRelay;
  readonly #server: Server;
  readonly #forwarder: ChildProcess;
  /** The folder made for the socket when the sandbox's own path was too long for one. */
  readonly #socketDir: string | undefined;

  private constructor(
    relay: EgressRelay,
    server: Server,
    forwarder: ChildProcess,
    socketDir: string | undefined,
  ) {
    this.relay = relay;
    this.#server = server;
    this.#forwarder = forwarder;
    this.#socketDir = socketDir;
  }

  static async start(opts: {
    jail: Jail;
    dir: string;
    sandboxId: string;
    entries: readonly EgressEntry[];
    logFile: string | undefined;
    onDenied: ((denial: EgressDenial) => void) | undefined;
    secrets?: readonly SecretBinding[] | undefined;
    tls?: TlsTermination | undefined;
    context: ErrorContext;
  }): Promise<LocalEgress> {
    const relay = new EgressRelay({
      sandboxId: opts.sandboxId,
      entries: opts.entries,
      connect: dial,
      logFile: opts.logFile,
      onDenied: opts.onDenied,
      secrets: opts.secrets,
      tls: opts.tls,
    });
    const { path: socketPath, ownDir } = await relaySocketPath(opts.dir);
    // Left behind by a crash before a re-attach: listening would fail on it.
    await rm(socketPath, { force: true });
    const server = createServer({ allowHalfOpen: true }, (stream) => relay.handle(stream));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => resolve());
      });
    } catch (error) {
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
      throw error;
    }
    const [program, ...args] = opts.jail.enterNetwork();
    const forwarder = spawn(
      program!,
      [
        ...args,
        process.execPath,
        '-e',
        FORWARDER_SCRIPT,
        socketPath,
        forwarderConfig(opts.entries),
        String(opts.jail.pid),
        opts.jail.pidNamespace,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: {} },
    );
    let said = '';
    forwarder.stdout!.on('data', (c: Buffer) => {
      said += c.toString('utf8');
    });
    forwarder.stderr!.on('data', (c: Buffer) => {
      said += c.toString('utf8');
    });
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
      forwarder.stdout!.on('data', () => {
        if (said.includes('ready\n')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      forwarder.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    const egress = new LocalEgress(relay, server, forwarder, ownDir);
    if (!ready) {
      await egress.close();
      throw new SandboxUnavailableError(
        `the egress forwarder did not start in the sandbox's network namespace: ${said.trim() || 'no reason given'}`,
        opts.context,
      );
    }
    return egress;
  }

  async close(): Promise<void> {
    if (this.#forwarder.exitCode === null && this.#forwarder.signalCode === null) {
      const gone = new Promise((resolve) => this.#forwarder.once('exit', resolve));
      this.#forwarder.kill('SIGKILL');
      await gone;
    }
    await new Promise((resolve) => this.#server.close(resolve));
    await this.relay.close();
    if (this.#socketDir) await rm(this.#socketDir, { recursive: true, force: true });
  }
}
