/**
 * The record of refused egress attempts, whoever hears of them (core's relay for a jail with only
 * loopback, docker's sentinel on the gateway address): the latest kept in memory, each appended
 * to the operator's log file as a JSON line, rate-limited so a sandbox looping on lookups cannot
 * fill the disk, and cleaned of secrets and of bytes a terminal would act on.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { redactSecrets, type SecretBinding } from './secrets.js';

/** One refused egress attempt, as the operator's log gets it. */
export interface EgressDenial {
  /** ISO 8601 time the library heard of it. */
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

export interface EgressDenialLogOptions {
  sandboxId: string;
  /** Append each denial as a JSON line to this file. */
  logFile?: string | undefined;
  onDenied?: ((denial: EgressDenial) => void) | undefined;
  /** Values redacted from what the sandbox reports. */
  secrets?: readonly SecretBinding[] | undefined;
}

/** Denials kept in memory (`denials`); the log file has them all, up to the rate limit. */
const KEPT = 1000;
/** Denials logged per second at most. */
const PER_SECOND = 50;

export class EgressDenialLog {
  readonly #o: EgressDenialLogOptions;
  #logged: Promise<unknown> = Promise.resolve();
  #second = 0;
  #inSecond = 0;
  #suppressed = 0;
  /** The latest denials, oldest first. */
  readonly denials: EgressDenial[] = [];

  constructor(options: EgressDenialLogOptions) {
    this.#o = options;
  }

  /**
   * A denial a helper inside the sandbox's network reported as `{"protocol","destination"}` JSON;
   * anything else is ignored (the helper is reachable from the sandbox, so what it says is input).
   */
  report(json: string): void {
    let reported: { protocol?: unknown; destination?: unknown };
    try {
      reported = JSON.parse(json);
    } catch {
      return;
    }
    if (
      (reported?.protocol !== 'dns' && reported?.protocol !== 'tcp') ||
      typeof reported.destination !== 'string'
    )
      return;
    this.record({ protocol: reported.protocol, destination: reported.destination });
  }

  record(reported: { protocol: EgressDenial['protocol']; destination: string; secret?: string }): void {
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
      // The operator's callback must not break whoever reports.
    }
  }

  /** Settles once every denial heard so far is in the log file. */
  flushed(): Promise<void> {
    return this.#logged.then(() => {});
  }
}
