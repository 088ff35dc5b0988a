/** The Modal emulator's credentials: the token pair clients send, and the JWTs it signs. */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type CallContext, ServerError, Status } from 'nice-grpc';

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

export class EmulatorAuth {
  readonly #key = randomBytes(32);

  constructor(
    readonly tokenId: string,
    readonly tokenSecret: string,
  ) {}

  /** A signed JWT (HS256) with `sub` and an `exp` claim (the SDK schedules its refresh by it). */
  sign(subject: string, lifetimeSecs = 3600): string {
    const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const body = b64(JSON.stringify({ sub: subject, exp: Math.floor(Date.now() / 1000) + lifetimeSecs }));
    return `${head}.${body}.${b64(createHmac('sha256', this.#key).update(`${head}.${body}`).digest())}`;
  }

  /** The subject of a JWT this emulator signed and that has not expired, else undefined. */
  verify(token: string): string | undefined {
    const [head, body, signature] = token.split('.');
    if (!head || !body || !signature) return undefined;
    const expected = createHmac('sha256', this.#key).update(`${head}.${body}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as {
      sub?: string;
      exp?: number;
    };
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return undefined;
    return claims.sub;
  }

  /** Control-plane calls: the token pair, and (bar AuthTokenGet) a valid auth token. */
  checkControlPlane(context: CallContext, needsAuthToken: boolean): void {
    const id = context.metadata.get('x-modal-token-id');
    const secret = context.metadata.get('x-modal-token-secret');
    if (id !== this.tokenId || secret !== this.tokenSecret)
      throw new ServerError(Status.UNAUTHENTICATED, 'modal emulator: unknown token id or secret');
    if (!needsAuthToken) return;
    const token = context.metadata.get('x-modal-auth-token');
    if (typeof token !== 'string' || this.verify(token) !== 'client')
      throw new ServerError(Status.UNAUTHENTICATED, 'modal emulator: missing or invalid x-modal-auth-token');
  }

  /** Router calls: `authorization: Bearer <jwt>` for this task. */
  routerSubject(context: CallContext): string {
    const header = context.metadata.get('authorization');
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
    const subject = this.verify(token);
    if (!subject?.startsWith('task:'))
      throw new ServerError(Status.UNAUTHENTICATED, 'modal emulator: missing or invalid router JWT');
    return subject.slice('task:'.length);
  }
}
