/**
 * The egress allowlist as a jail with only loopback sees it: each allowed host gets an address
 * of the jail's own loopback (named in its /etc/hosts and answered by its DNS responder), where
 * the forwarder listens on the allowed ports. Loopback IPv4 literals keep their own address
 * (they name a service on the sandbox's host); other IP literals have no name to stand in for.
 */
import { type ErrorContext, PolicyNotEnforceableError } from '../errors.js';

/** One allowed destination and where the jail reaches it. */
export interface EgressEntry {
  /** Position in the allowlist: the only thing the forwarder tells the relay. */
  index: number;
  /** Host name or address as the allowlist gives it, reached from the relay's side. */
  host: string;
  port: number;
  /** Loopback address in the jail that stands for `host`. */
  address: string;
}

/** Loopback block whose addresses stand for allowed host names (127.77.0.1, 127.77.0.2, ...). */
const NAME_BLOCK = '127.77';

const isLoopbackName = (host: string) => /^(localhost|localhost\.localdomain)$/i.test(host);

/** Parse `host:port` entries; throws PolicyNotEnforceableError for the ones a jail cannot honour. */
export function parseEgressAllowlist(
  allow: readonly string[],
  backend: string,
  context: ErrorContext,
): EgressEntry[] {
  const bad: string[] = [];
  const addresses = new Map<string, string>();
  const entries: EgressEntry[] = [];
  for (const entry of allow) {
    const i = entry.lastIndexOf(':');
    const host = entry.slice(0, i).toLowerCase();
    const port = Number(entry.slice(i + 1));
    if (!(port >= 1 && port <= 65535)) {
      bad.push(`${entry}: port out of range`);
      continue;
    }
    let address = addresses.get(host);
    if (address === undefined) {
      if (host.startsWith('[')) {
        bad.push(`${entry}: IPv6 destinations are not supported, use a host name`);
        continue;
      }
      if (/^[0-9.]+$/.test(host)) {
        if (!/^127\.\d+\.\d+\.\d+$/.test(host) || host.startsWith(`${NAME_BLOCK}.`)) {
          bad.push(`${entry}: IP literals other than loopback cannot be allowlisted, use a host name`);
          continue;
        }
        address = host;
      } else if (isLoopbackName(host)) address = '127.0.0.1';
      else {
        const n = addresses.size + 1;
        if (n > 65_000) {
          bad.push(`${entry}: too many hosts`);
          continue;
        }
        address = `${NAME_BLOCK}.${n >> 8}.${n & 255}`;
      }
      addresses.set(host, address);
    }
    if (!entries.some((e) => e.host === host && e.port === port))
      entries.push({ index: entries.length, host, port, address });
  }
  if (bad.length > 0)
    throw new PolicyNotEnforceableError(
      `the ${backend} backend cannot enforce the network allowlist: ${bad.join('; ')}`,
      { network: bad.join('; ') },
      context,
    );
  return entries;
}

/** The jail's /etc/hosts: loopback, and each allowed host name at its stand-in address. */
export function egressHostsFile(entries: readonly EgressEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.host) || /^[0-9.]+$/.test(e.host) || isLoopbackName(e.host)) continue;
    seen.add(e.host);
    lines.push(`${e.address}\t${e.host}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The jail's /etc/resolv.conf: the forwarder's DNS responder, which answers only allowed names. */
export const EGRESS_RESOLV_CONF = 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n';

/** What the forwarder is told (JSON on its command line): where to listen, which names to answer. */
export function forwarderConfig(entries: readonly EgressEntry[]): string {
  const names: Record<string, string> = {};
  for (const e of entries) if (!/^[0-9.]+$/.test(e.host)) names[e.host] = e.address;
  return JSON.stringify({
    listen: entries.map((e) => ({ address: e.address, port: e.port, index: e.index })),
    names,
  });
}
