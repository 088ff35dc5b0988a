/**
 * What the relay does to the bytes a sandbox sends to an allowed destination when the policy
 * has secrets. A stream that opens with an HTTP/1.x request has its request head read whole:
 * a placeholder of a secret not allowed for this destination refuses the request (403); the
 * placeholders of the secrets allowed here become the real values in the header lines (and in
 * the request line if the secret asks), and the request gets `Connection: close`, so every
 * request comes with a head of its own on a new connection. Everything else (bodies, other
 * protocols) passes unchanged but is watched for placeholders of secrets not allowed here,
 * which cut the connection.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { SecretBinding } from './secrets.js';

/** A request head larger than this is not read whole: the stream is treated as not HTTP. */
const HEAD_LIMIT = 64 * 1024;
const REQUEST_LINE = /^[A-Z]{1,20} \S+ HTTP\/1\.[01]$/;
/** Headers that would keep the connection open for a next request the relay would not read. */
const HOP_HEADERS = /^(connection|keep-alive|proxy-connection)\s*:/i;

export interface SecretRefusal {
  secret: SecretBinding;
  /** The response the sandbox gets, when the refusal came before any byte went upstream. */
  reply?: Buffer;
}

export class SecretFilter extends Transform {
  readonly #allowed: readonly SecretBinding[];
  readonly #forbidden: readonly SecretBinding[];
  readonly #onRefused: (refusal: SecretRefusal) => void;
  /** `head`: reading what may be a request head; `raw`: passing bytes on, watching them. */
  #mode: 'head' | 'raw' = 'head';
  #head = Buffer.alloc(0);
  /** The end of what passed in raw mode, so a placeholder cut across two chunks is still seen. */
  #carry = Buffer.alloc(0);
  readonly #carryBytes: number;
  #refused = false;

  constructor(opts: {
    destination: string;
    secrets: readonly SecretBinding[];
    onRefused: (refusal: SecretRefusal) => void;
  }) {
    super();
    this.#allowed = opts.secrets.filter((s) => s.hosts.has(opts.destination));
    this.#forbidden = opts.secrets.filter((s) => !s.hosts.has(opts.destination));
    this.#onRefused = opts.onRefused;
    this.#carryBytes = Math.max(0, ...this.#forbidden.map((s) => s.placeholder.length - 1));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const out = this.#take(chunk);
    done(null, this.#refused ? undefined : out);
  }

  override _flush(done: TransformCallback): void {
    const rest = this.#head;
    this.#head = Buffer.alloc(0);
    const out = rest.length > 0 && !this.#refused ? this.#toRaw(rest) : undefined;
    done(null, this.#refused ? undefined : out);
  }

  /** What of `chunk` (with what was held back) goes on now. */
  #take(chunk: Buffer): Buffer | undefined {
    if (this.#refused) return undefined;
    if (this.#mode === 'raw') return this.#watch(chunk);
    this.#head = Buffer.concat([this.#head, chunk]);
    const end = this.#head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.#head.length <= HEAD_LIMIT && this.#mayBeRequest()) return undefined;
      const bytes = this.#head;
      this.#head = Buffer.alloc(0);
      return this.#toRaw(bytes);
    }
    const head = this.#head.subarray(0, end + 4);
    const rest = this.#head.subarray(end + 4);
    this.#head = Buffer.alloc(0);
    const lines = head.toString('latin1').slice(0, -4).split('\r\n');
    if (!REQUEST_LINE.test(lines[0]!)) return this.#toRaw(Buffer.concat([head, rest]));
    const text = lines.join('\r\n');
    const wrong = this.#forbidden.find((s) => text.includes(s.placeholder));
    if (wrong) {
      this.#refuse(wrong, true);
      return undefined;
    }
    const upgrade = lines.some((l) => /^upgrade\s*:/i.test(l));
    const out = lines
      .map((line, i) => this.#swap(line, i === 0))
      .filter((line, i) => i === 0 || upgrade || !HOP_HEADERS.test(line));
    if (!upgrade) out.push('Connection: close');
    const rewritten = Buffer.from(`${out.join('\r\n')}\r\n\r\n`, 'latin1');
    return Buffer.concat([rewritten, this.#toRaw(rest)]);
  }

  /** Could the bytes so far still be the start of a request line? */
  #mayBeRequest(): boolean {
    const nl = this.#head.indexOf('\n');
    const first = this.#head.subarray(0, nl < 0 ? this.#head.length : nl).toString('latin1');
    if (nl >= 0) return REQUEST_LINE.test(first.replace(/\r$/, ''));
    return /^[A-Z]{0,20}( \S*( H(T(T(P(\/(1(\.[01]?)?)?)?)?)?)?)?)?$/.test(first);
  }

  #swap(line: string, requestLine: boolean): string {
    let out = line;
    for (const s of this.#allowed)
      if (!requestLine || s.inRequestLine) out = out.split(s.placeholder).join(s.value.toString('latin1'));
    return out;
  }

  #toRaw(bytes: Buffer): Buffer {
    this.#mode = 'raw';
    return this.#watch(bytes);
  }

  #watch(bytes: Buffer): Buffer {
    if (this.#forbidden.length === 0 || bytes.length === 0) return bytes;
    const seen = Buffer.concat([this.#carry, bytes]);
    const wrong = this.#forbidden.find((s) => seen.includes(s.placeholder));
    if (wrong) {
      this.#refuse(wrong, false);
      return Buffer.alloc(0);
    }
    this.#carry = seen.subarray(Math.max(0, seen.length - this.#carryBytes));
    return bytes;
  }

  #refuse(secret: SecretBinding, beforeAnyByte: boolean): void {
    this.#refused = true;
    const body = `agentbox: this request carries the placeholder of ${secret.env}, which may not be sent to this host\n`;
    this.#onRefused({
      secret,
      ...(beforeAnyByte
        ? {
            reply: Buffer.from(
              `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
            ),
          }
        : {}),
    });
  }
}
