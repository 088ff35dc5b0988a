/**
 * The relay: the library's side of the egress allowlist. It takes the forwarder's connections
 * (from a unix socket, or streams an SSH connection forwards), reads the one-line header, and
 * either connects to the allowlist entry it names — only entries of this sandbox's allowlist,
 * whatever the header says — or records a denied attempt the forwarder reports.
 */
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, rootCertificates, TLSSocket, connect as tlsConnect } from 'node:tls';
import type { EgressEntry } from './allowlist.js';
import { type EgressDenial, EgressDenialLog } from './denial-log.js';
import { SecretFilter, type SecretRefusal } from './secret-filter.js';
import type { SecretBinding, TlsTermination } from './secrets.js';

export interface EgressRelayOptions {
  sandboxId: string;
  entries: readonly EgressEntry[];
  /** Open a connection to an allowed destination, from wherever the sandbox's egress leaves. */
  connect: (host: string, port: number) => Promise<Duplex>;
  /** Append each denial as a JSON line to this file. */
  logFile?: string | undefined;
  onDenied?: ((denial: EgressDenial) => void) | undefined;
  /** Placeholders swapped for real values on the way out (secrets.ts); none by default. */
  secrets?: readonly SecretBinding[] | undefined;
  /** Destinations whose TLS is decrypted, so that secrets reach HTTPS hosts too (secrets.ts). */
  tls?: TlsTermination | undefined;
}

const MAX_HEADER = 4096;

export class EgressRelay {
  readonly #o: EgressRelayOptions;
  readonly #open = new Set<Duplex>();
  readonly #log: EgressDenialLog;

  constructor(options: EgressRelayOptions) {
    this.#o = options;
    this.#log = new EgressDenialLog(options);
  }

  /** The latest denials, oldest first. */
  get denials(): readonly EgressDenial[] {
    return this.#log.denials;
  }

  /** Serve one stream from the forwarder. */
  handle(stream: Duplex): void {
    this.#open.add(stream);
    stream.once('close', () => this.#open.delete(stream));
    stream.on('error', () => stream.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > MAX_HEADER) stream.destroy();
        return;
      }
      stream.off('data', onData);
      stream.pause();
      const line = head.subarray(0, nl).toString('utf8');
      const rest = head.subarray(nl + 1);
      if (line.startsWith('c ')) void this.#relay(stream, Number(line.slice(2)), rest);
      else {
        if (line.startsWith('d ')) this.#log.report(line.slice(2));
        stream.destroy();
      }
    };
    stream.on('data', onData);
  }

  async #relay(client: Duplex, index: number, rest: Buffer): Promise<void> {
    // Both ends may become their TLS sessions (#terminate).
    const entry = Number.isInteger(index) ? this.#o.entries[index] : undefined;
    if (!entry) {
      client.destroy();
      return;
    }
    let upstream: Duplex;
    try {
      upstream = await this.#o.connect(entry.host, entry.port);
    } catch {
      client.destroy();
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    this.#open.add(upstream);
    const destination = `${entry.host}:${entry.port}`;
    const terminated = this.#o.tls?.hosts.get(destination);
    if (terminated && this.#o.tls) {
      ({ client, upstream } = this.#terminate(client, upstream, entry.host, rest, terminated.upstreamCa));
      rest = Buffer.alloc(0);
    }
    let refused = false;
    upstream.once('close', () => {
      this.#open.delete(upstream);
      // A refusal's reply is on its way: the client ends once it is written.
      if (!refused) client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    const secrets = this.#o.secrets ?? [];
    let outbound: Duplex = client;
    if (secrets.length > 0) {
      const filter = new SecretFilter({
        destination,
        secrets,
        onRefused: (refusal: SecretRefusal) => {
          refused = true;
          this.#log.record({ protocol: 'secret', destination, secret: refusal.secret.env });
          client.unpipe(filter);
          upstream.destroy();
          if (refusal.reply) client.end(refusal.reply, () => client.destroy());
          else client.destroy();
        },
      });
      filter.on('error', () => client.destroy());
      outbound = client.pipe(filter);
    }
    if (rest.length > 0) (outbound === client ? upstream : outbound).write(rest);
    outbound.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /**
   * Decrypt a connection: the sandbox's side gets a certificate for `host` signed by the
   * sandbox's CA; the real server's side is a TLS client that verifies the server's certificate
   * against the system's roots (and the host's extra CA). Only HTTP/1.1 is offered to the
   * sandbox, since the secret filter reads HTTP/1 request heads.
   */
  #terminate(
    client: Duplex,
    upstream: Duplex,
    host: string,
    rest: Buffer,
    upstreamCa: string | undefined,
  ): { client: Duplex; upstream: Duplex } {
    const leaf = this.#o.tls!.ca.leafFor(host);
    // What the forwarder sent after its header line is the start of the TLS handshake.
    if (rest.length > 0) client.unshift(rest);
    const inner = new TLSSocket(client, {
      isServer: true,
      secureContext: createSecureContext({ key: leaf.keyPem, cert: leaf.certificatePem }),
      ALPNProtocols: ['http/1.1'],
    });
    const outer = tlsConnect({
      socket: upstream,
      servername: isIP(host) ? undefined : host,
      ca: upstreamCa ? [...rootCertificates, upstreamCa] : undefined,
      ALPNProtocols: ['http/1.1'],
    });
    for (const [raw, session] of [
      [client, inner],
      [upstream, outer],
    ] as const) {
      this.#open.add(session);
      // A handshake the sandbox's client refuses (it does not trust the CA) ends that connection only.
      session.on('error', () => session.destroy());
      session.once('close', () => {
        this.#open.delete(session);
        raw.destroy();
      });
      raw.once('close', () => {
        this.#open.delete(raw);
        session.destroy();
      });
    }
    return { client: inner, upstream: outer };
  }

  /** Settles once every denial heard so far is in the log file. */
  flushed(): Promise<void> {
    return this.#log.flushed();
  }

  /** End every relayed connection. */
  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await this.flushed();
  }
}
