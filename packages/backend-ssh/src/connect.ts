/**
 * Opening one connection: read and decrypt the keys, verify the host key (known_hosts or a
 * pinned fingerprint, see known-hosts.ts), authenticate, and turn every way that can fail into
 * a typed error: a refused host key or credentials are AUTHENTICATION, an unreachable host is
 * SANDBOX_UNAVAILABLE.
 */
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import {
  type AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import ssh2, { type AnyAuthMethod, type Client, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { offersPublicKey, refusedKeyHint } from './auth-hint.js';
import type { SshAuth, SshEndpoint } from './config.js';
import {
  type HostKeyVerdict,
  knownHostsName,
  knownKeysFor,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from './known-hosts.js';

// ssh2 is CommonJS: Node's ESM loader only sees its default export.
const { Client: SshClient, utils } = ssh2;

const HOST_KEY_BRAND = Symbol.for('agentbox.ssh.hostKeyVerificationError');

/**
 * A refused host key: unknown, changed, revoked or not the pinned one. Its `code` is
 * AUTHENTICATION (it is an AuthenticationError); `reason` says which. Branded like core's errors.
 */
export class HostKeyVerificationError extends AuthenticationError {
  readonly reason: 'unknown' | 'changed' | 'revoked' | 'fingerprint-mismatch';
  constructor(reason: HostKeyVerificationError['reason'], message: string, context: ErrorContext) {
    super(message, context);
    this.reason = reason;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && HOST_KEY_BRAND in value;
  }
}
Object.defineProperty(HostKeyVerificationError.prototype, HOST_KEY_BRAND, { value: true });

/** Clients whose connection ended, possibly before their owner listened for it. */
export const endedClients = new WeakSet<Client>();

/** Open and authenticate one connection to `ep`, over `sock` when given (a jump host's channel). */
export async function connectEndpoint(
  ep: SshEndpoint,
  sock: Duplex | undefined,
  context: ErrorContext,
): Promise<Client> {
  const authHandler = await authMethods(ep, context);
  const fingerprints =
    ep.hostKeyFingerprint === undefined
      ? undefined
      : Array.isArray(ep.hostKeyFingerprint)
        ? ep.hostKeyFingerprint
        : [ep.hostKeyFingerprint];
  const known = fingerprints ? [] : await knownKeysFor(ep.knownHostsFile, ep.host, ep.port);
  const preferred = preferredHostKeyAlgorithms(known) as ServerHostKeyAlgorithm[];
  const check = {
    host: ep.host,
    port: ep.port,
    fingerprints,
    knownHostsFile: ep.knownHostsFile,
    policy: ep.hostKeyPolicy,
  };
  let verdict: HostKeyVerdict | undefined;
  let verifyError: unknown;

  const client = new SshClient();
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(connectError(ep, error, verdict, verifyError, context));
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    // These stay attached (no-ops once settled), so an error between 'ready' and the caller's own
    // listeners is never an unhandled 'error' event; an early end is remembered for the caller.
    client.on('error', fail);
    client.once('end', () => endedClients.add(client));
    client.once('close', () => {
      endedClients.add(client);
      fail(new Error('the connection closed during the handshake'));
    });
    // Without TCP_NODELAY every small request waits out a delayed ACK (about 40 ms each way).
    client.once('connect', () => client.setNoDelay(true));
    const options: ConnectConfig = {
      host: ep.host,
      port: ep.port,
      username: ep.user,
      readyTimeout: ep.connectTimeoutMs,
      keepaliveInterval: ep.keepaliveIntervalMs,
      keepaliveCountMax: ep.keepaliveCountMax,
      authHandler,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        verifyHostKey(check, key).then(
          (v) => {
            verdict = v;
            verify(v.ok);
          },
          (error) => {
            verifyError = error;
            verify(false);
          },
        );
      },
    };
    if (sock) options.sock = sock;
    if (preferred.length > 0)
      options.algorithms = { serverHostKey: { remove: preferred, prepend: preferred, append: [] } };
    try {
      client.connect(options);
    } catch (error) {
      fail(error);
    }
  });
}

function connectError(
  ep: SshEndpoint,
  error: unknown,
  verdict: HostKeyVerdict | undefined,
  verifyError: unknown,
  context: ErrorContext,
): AgentboxError {
  const where = `${ep.user}@${knownHostsName(ep.host, ep.port)}`;
  const ctx = { ...context, operation: context.operation ?? 'connect', cause: error };
  if (verdict && !verdict.ok)
    return new HostKeyVerificationError(
      verdict.reason,
      `host key verification failed: ${verdict.detail}`,
      ctx,
    );
  if (verifyError !== undefined)
    return new AuthenticationError(`could not check the host key of ${where}: ${messageOf(verifyError)}`, {
      ...ctx,
      cause: verifyError,
    });
  const level = (error as { level?: string } | null)?.level;
  if (level === 'client-authentication') {
    const hint = offersPublicKey(ep) ? ` ${refusedKeyHint(ep.user)}` : '';
    return new AuthenticationError(
      `${where} refused every authentication method given (${messageOf(error)}). Check config.user and config.auth.${hint}`,
      ctx,
    );
  }
  if (level === 'client-timeout')
    return new SandboxUnavailableError(`no SSH connection to ${where} within ${ep.connectTimeoutMs} ms`, ctx);
  return new SandboxUnavailableError(`cannot connect to ${where}: ${messageOf(error)}`, ctx);
}

/** The configured methods as ssh2 auth attempts; keys are read and decrypted here, so a bad one fails early. */
async function authMethods(ep: SshEndpoint, context: ErrorContext): Promise<AnyAuthMethod[]> {
  const list: SshAuth[] = Array.isArray(ep.auth) ? ep.auth : [ep.auth];
  const methods: AnyAuthMethod[] = [];
  for (const auth of list) {
    switch (auth.type) {
      case 'password':
        methods.push({ type: 'password', username: ep.user, password: auth.password });
        break;
      case 'agent':
        if (!auth.socket)
          throw new InvalidArgumentError('auth type agent needs a socket (or SSH_AUTH_SOCK set)', {
            ...context,
            issues: ['config.auth.socket: required when SSH_AUTH_SOCK is not set'],
          });
        methods.push({ type: 'agent', username: ep.user, agent: auth.socket });
        break;
      case 'privateKey': {
        let text: Buffer | string;
        if (auth.path !== undefined) {
          try {
            text = await readFile(auth.path);
          } catch (error) {
            throw new InvalidArgumentError(`cannot read private key file ${auth.path}: ${messageOf(error)}`, {
              ...context,
              cause: error,
              issues: [`config.auth.path: cannot read ${auth.path}`],
            });
          }
        } else {
          text = auth.key!;
        }
        const key = utils.parseKey(text, auth.passphrase);
        if (key instanceof Error) {
          throw new AuthenticationError(
            `cannot use the private key${auth.path ? ` ${auth.path}` : ''}: ${key.message}`,
            {
              ...context,
              cause: key,
            },
          );
        }
        methods.push({ type: 'publickey', username: ep.user, key: Array.isArray(key) ? key[0] : key });
        break;
      }
    }
  }
  return methods;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
