/**
 * The relay: the library's side of the egress allowlist. It takes the forwarder's connections
 * (from a unix socket, or streams an SSH connection forwards), reads the one-line header, and
 * either connects to the allowlist entry it names — only entries of this sandbox's allowlist,
 * whatever the header says — or records a denied attempt the forwarder reports.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { createSecureContext, rootCertificates, TLSSocket, connect as tlsConnect } from 'node:tls';
import type { EgressEntry } from './allowlist.js';
import { SecretFilter, type SecretRefusal } from './secret-filter.js';
import { redactSecrets, type SecretBinding, type TlsTermination } from './secrets.js';

/** One refused egress attempt, as the operator's log gets it. */
export interface EgressDenial {
  /** ISO 8601 time the relay heard of it. */
  time: string;
  sandboxId: string;
  /**
   * `dns`: a lookup of a name not on the list; `tcp`: a connection to an address:port not
   * relayed; `secret`: a request to an allowed destination carrying the placeholder of a secret
   * not allowed there.
   */
  protocol: 'dns' | 'tcp' | 'secret';
  /** The name looked up, or `address:port` as the sandbox dialled it (`host:port` of the entry for `secret`). */
  destination: string;
  /** With `secret`: the secret's variable name (never its value). */
  secret?: string;
  /** Denials left out of the log since the previous entry (over the rate limit). */
  suppressed?: number;
}

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

/** Denials kept in memory (`denials`); the log file has them all, up to the rate limit. */
const KEPT = 1000;
/** Denials logged per second at most: a sandbox looping on lookups must not fill the disk. */
const PER_SECOND = 50;
const MAX_HEADER = 4096;

export class EgressRelay {
  readonly #o: EgressRelayOptions;
  readonly #open = new Set<Duplex>();
  #logged: Promise<unknown> = Promise.resolve();
  #second = 0;
  #inSecond = 0;
  #suppressed = 0;
  /** The latest denials, oldest first. */
  readonly denials: EgressDenial[] = [];

  constructor(options: EgressRelayOptions) {
    this.#o = options;
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
        if (line.startsWith('d ')) this.#deny(line.slice(2));
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
          this.#record({ protocol: 'secret', destination, secret: refusal.secret.env });
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

  #deny(json: string): void {
    let reported: { protocol?: unknown; destination?: unknown };
    try {
      reported = JSON.parse(json);
    } catch {
      return;
    }
    if (
      (reported.protocol !== 'dns' && reported.protocol !== 'tcp') ||
      typeof reported.destination !== 'string'
    )
      return;
    this.#record({ protocol: reported.protocol, destination: reported.destination });
  }

  #record(reported: { protocol: EgressDenial['protocol']; destination: string; secret?: string }): void {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#inSecond = 0;
    }
    if (++this.#inSecond > PER_SECOND) {
      this.#suppressed++;
      return;
    }
    const denial: EgressDenial = {
      time: new Date(now).toISOString(),
      sandboxId: this.#o.sandboxId,
      protocol: reported.protocol,
      // Bounded and printable: it comes from inside the sandbox, which may have learnt a value.
      destination: redactSecrets(reported.destination, this.#o.secrets ?? [])
        .slice(0, 300)
        .replace(/[^\x21-\x7e]/g, '?'),
      ...(reported.secret !== undefined ? { secret: reported.secret } : {}),
      ...(this.#suppressed > 0 ? { suppressed: this.#suppressed } : {}),
    };
    this.#suppressed = 0;
    this.denials.push(denial);
    if (this.denials.length > KEPT) this.denials.shift();
    const file = this.#o.logFile;
    if (file)
      this.#logged = this.#logged
        .then(async () => {
          await mkdir(dirname(file), { recursive: true });
          await appendFile(file, `${JSON.stringify(denial)}\n`);
        })
        .catch(() => {});
    try {
      this.#o.onDenied?.(denial);
    } catch {
      // The operator's callback must not break the relay.
    }
  }

  /** Settles once every denial heard so far is in the log file. */
  flushed(): Promise<void> {
    return this.#logged.then(() => {});
  }

  /** End every relayed connection. */
  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await this.flushed();
  }
}
