/**
 * The few X.509 certificates TLS termination needs (a per-sandbox CA and a leaf per host it
 * decrypts), written in DER by hand: node:crypto signs but has no certificate builder, and
 * the subset used here (ECDSA P-256, a name with one CN, four extensions) is small.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

// DER: tag, length, content.
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (content: Buffer) => tlv(0x04, content);
const bits = (content: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), content]));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const TRUE = tlv(0x01, Buffer.from([0xff]));

function integer(value: Buffer): Buffer {
  // Positive: a leading 1 bit would make it negative.
  return tlv(0x02, value[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(date: Date): Buffer {
  // UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}

const name = (commonName: string) =>
  sequence(set(sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from(commonName, 'utf8')))));

const extension = (id: string, critical: boolean, value: Buffer) =>
  sequence(oid(id), ...(critical ? [TRUE] : []), octets(value));

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

function keyIdentifier(publicKey: KeyObject): Buffer {
  // SHA-1 of the public key's bits: the last 65 bytes of a P-256 SubjectPublicKeyInfo.
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spki.subarray(-65)).digest();
}

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** A certificate and its key, as PEM (what `tls.createSecureContext` takes). */
export interface IssuedCertificate {
  certificatePem: string;
  keyPem: string;
}

interface Issuer {
  name: string;
  key: KeyObject;
  keyId: Buffer;
}

function issue(opts: {
  subject: string;
  publicKey: KeyObject;
  issuer: Issuer | 'self';
  privateKey: KeyObject;
  days: number;
  extensions: Buffer[];
}): Buffer {
  const now = Date.now();
  const serial = randomBytes(16);
  // Positive, and no leading zero byte (DER allows none).
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const issuerName = opts.issuer === 'self' ? opts.subject : opts.issuer.name;
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_WITH_SHA256,
    name(issuerName),
    // An hour back: a sandbox clock a little behind the host's still accepts it.
    sequence(time(new Date(now - 3_600_000)), time(new Date(now + opts.days * 86_400_000))),
    name(opts.subject),
    opts.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...opts.extensions)),
  );
  const signature = sign('sha256', tbs, opts.issuer === 'self' ? opts.privateKey : opts.issuer.key);
  return sequence(tbs, ECDSA_WITH_SHA256, bits(signature));
}

/**
 * A certificate authority that exists for one sandbox: its key never leaves this process, so a
 * certificate it signs is trusted only by the sandbox given its certificate.
 */
export class SandboxCa {
  readonly certificatePem: string;
  readonly #issuer: Issuer;
  readonly #leaves = new Map<string, IssuedCertificate>();

  constructor(label: string) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyId = keyIdentifier(publicKey);
    const subject = `agentbox egress CA ${label}`;
    const der = issue({
      subject,
      publicKey,
      issuer: 'self',
      privateKey,
      days: 365,
      extensions: [
        extension('2.5.29.19', true, sequence(TRUE)), // basicConstraints: CA
        extension('2.5.29.15', true, bits(Buffer.from([0x06]), 1)), // keyUsage: keyCertSign, cRLSign
        extension('2.5.29.14', false, octets(keyId)), // subjectKeyIdentifier
      ],
    });
    this.certificatePem = toPem(der);
    this.#issuer = { name: subject, key: privateKey, keyId };
  }

  /** A server certificate for `host` (a DNS name or an IP address), made once and kept. */
  leafFor(host: string): IssuedCertificate {
    const known = this.#leaves.get(host);
    if (known) return known;
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ip = isIP(host);
    const altName = ip
      ? tlv(0x87, ip === 4 ? Buffer.from(host.split('.').map(Number)) : ipv6Bytes(host))
      : tlv(0x82, Buffer.from(host, 'ascii'));
    const der = issue({
      subject: host,
      publicKey,
      issuer: this.#issuer,
      privateKey,
      days: 365,
      extensions: [
        extension('2.5.29.19', true, sequence()), // basicConstraints: not a CA
        extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage: digitalSignature
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
        extension('2.5.29.17', false, sequence(altName)), // subjectAltName
        extension('2.5.29.35', false, sequence(tlv(0x80, this.#issuer.keyId))), // authorityKeyIdentifier
      ],
    });
    const leaf = {
      certificatePem: toPem(der),
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    this.#leaves.set(host, leaf);
    return leaf;
  }
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const part = (s: string) => (s ? s.split(':') : []);
  const h = part(head);
  const t = address.includes('::') ? part(tail) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g: string) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}
