/**
 * The network allowlist of a jailed SSH sandbox (core's egress kit). The forwarder runs on the
 * host, in the jail's network namespace (it needs Node.js there); it hands each connection to a
 * unix socket that sshd forwards back to this process (OpenSSH's streamlocal forwarding), where
 * the relay opens the allowed destination through the same connection (a direct-tcpip
 * channel), so sshd dials it from the host, as a command there would. Denials reach the relay
 * the same way and are logged on this machine. After a reconnect the forward is set up again.
 */
import type { Duplex } from 'node:stream';
import { PolicyNotEnforceableError, SandboxUnavailableError } from '@agentbox/core';
import {
  type EgressDenial,
  type EgressEntry,
  EgressRelay,
  type ErrorContext,
  FORWARDER_SCRIPT,
  forwarderConfig,
  type SecretBinding,
  type TlsTermination,
} from '@agentbox/core/backend';
import type { Client } from 'ssh2';
import type { SshConnection } from './connection.js';
import { enterNetworkWords, type JailInfo } from './jail.js';
import { quote, quoteAll } from './shell.js';

/** Exit status of the start script when the host has no Node.js. */
const NO_NODE = 3;

// Starts the forwarder detached (it ends itself once the jail is gone) and waits for it to bind.
const START_FORWARDER = `out=$1; shift
command -v node >/dev/null 2>&1 || { echo "node (Node.js) is not installed on the host" >&2; exit ${NO_NODE}; }
setsid "$@" </dev/null >"$out" 2>&1 &
f=$! i=0
while [ $i -lt 200 ]; do
  grep -q '^ready$' "$out" 2>/dev/null && exit 0
  kill -0 $f 2>/dev/null || { cat "$out" >&2; exit 4; }
  i=$((i + 1)); sleep 0.05
done
cat "$out" >&2; kill -9 $f; exit 5`;

function run(client: Client, command: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      channel.resume();
      channel.stderr.resume();
      channel.once('close', () => resolve());
    }),
  );
}

export class SshEgress {
  readonly relay: EgressRelay;

  private constructor(relay: EgressRelay) {
    this.relay = relay;
  }

  static async start(opts: {
    conn: SshConnection;
    jail: JailInfo;
    dir: string;
    sandboxId: string;
    entries: readonly EgressEntry[];
    logFile: string | undefined;
    onDenied: ((denial: EgressDenial) => void) | undefined;
    secrets?: readonly SecretBinding[] | undefined;
    tls?: TlsTermination | undefined;
    context: ErrorContext;
  }): Promise<SshEgress> {
    const { conn, context } = opts;
    const relay = new EgressRelay({
      sandboxId: opts.sandboxId,
      entries: opts.entries,
      connect: async (host, port) => {
        const { client } = await conn.link();
        return new Promise<Duplex>((resolve, reject) =>
          client.forwardOut('127.0.0.1', 0, host, port, (err, stream) =>
            err ? reject(err) : resolve(stream),
          ),
        );
      },
      logFile: opts.logFile,
      onDenied: opts.onDenied,
      secrets: opts.secrets,
      tls: opts.tls,
    });
    const socketPath = `${opts.dir}/egress/relay.sock`;
    let forwarded: unknown;
    await conn.onLink(async (client) => {
      client.on('unix connection', (info, accept, reject) => {
        if (info.socketPath === socketPath) relay.handle(accept());
        else reject();
      });
      // sshd leaves the socket file behind when a connection ends: the next one binds it anew.
      await run(client, `rm -f -- ${quote(socketPath)}`);
      await new Promise<void>((resolve, reject) =>
        client.openssh_forwardInStreamLocal(socketPath, (err) => (err ? reject(err) : resolve())),
      ).catch((error) => {
        forwarded = error;
      });
    });
    if (forwarded !== undefined)
      throw new SandboxUnavailableError(
        `the SSH server refused to forward the egress relay's socket (is AllowStreamLocalForwarding off?): ${(forwarded as Error).message}`,
        { ...context, cause: forwarded },
      );
    const r = await conn.run(
      `sh -c ${quoteAll([
        START_FORWARDER,
        'sh',
        `${opts.dir}/egress/forwarder.out`,
        ...enterNetworkWords(opts.jail),
        'node',
        '-e',
        FORWARDER_SCRIPT,
        socketPath,
        forwarderConfig(opts.entries),
        String(opts.jail.pid),
        opts.jail.pidNamespace,
      ])}`,
      { context },
    );
    if (r.code === NO_NODE)
      throw new PolicyNotEnforceableError(
        `the ssh backend cannot enforce the network allowlist on this host: ${r.stderr.toString('utf8').trim()}`,
        { network: 'the egress forwarder needs Node.js (node) on the host' },
        context,
      );
    if (r.code !== 0)
      throw new SandboxUnavailableError(
        `cannot start the egress forwarder on the host: ${r.stderr.toString('utf8').trim() || `exit ${r.code}`}`,
        context,
      );
    return new SshEgress(relay);
  }

  async close(): Promise<void> {
    await this.relay.close();
  }
}
