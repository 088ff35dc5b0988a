/**
 * The sandbox's NetworkPolicy: no ingress, and no egress at all or exactly the policy's
 * allowlist. A NetworkPolicy selects addresses, not names, so each allowed host name is resolved
 * by the library at open (every address it has then) and, when the list names any host, lookups
 * to the cluster DNS (pods labelled `k8s-app: kube-dns`) are allowed too. What was resolved is
 * kept in an annotation, so the report read back says which address stands for which entry.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PolicyNotEnforceableError } from '@agentbox/core';
import { ID_LABEL, labelsFor, names } from './labels.js';

/** The annotation holding each allowlist entry's addresses, as JSON `{"host:port": ["cidr"...]}`. */
export const ALLOWLIST_ANNOTATION = 'agentbox.dev/allowlist';
const DNS_LABELS = { 'k8s-app': 'kube-dns' };

/** One allowlist entry with the addresses it stands for. */
export interface AllowedDestination {
  entry: string;
  port: number;
  /** Single-address blocks: `a.b.c.d/32` or `x::y/128`. */
  cidrs: string[];
  /** Whether the entry named a host (so the sandbox needs DNS to find it). */
  named: boolean;
}

/** Resolve the allowlist; what a NetworkPolicy cannot express is a PolicyNotEnforceableError. */
export async function resolveAllowlist(
  allow: readonly string[],
  context: { backend: string; sandboxId: string; operation: string },
): Promise<AllowedDestination[]> {
  const bad: string[] = [];
  const out: AllowedDestination[] = [];
  for (const entry of allow) {
    const i = entry.lastIndexOf(':');
    const host = entry.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(entry.slice(i + 1));
    if (!(port >= 1 && port <= 65535)) {
      bad.push(`${entry}: port out of range`);
      continue;
    }
    const named = isIP(host) === 0;
    const addresses = named
      ? await lookup(host, { all: true }).then(
          (list) => list.map((a) => a.address),
          () => undefined,
        )
      : [host];
    if (!addresses || addresses.length === 0) {
      bad.push(`${entry}: ${host} does not resolve from here (a NetworkPolicy needs its addresses)`);
      continue;
    }
    const loopback = addresses.find((a) => /^127\./.test(a) || a === '::1');
    if (loopback) {
      bad.push(`${entry}: ${loopback} is loopback, the pod's own (a NetworkPolicy does not govern it)`);
      continue;
    }
    const cidrs = [...new Set(addresses.map((a) => `${a}/${isIP(a) === 4 ? 32 : 128}`))];
    if (!out.some((d) => d.entry === entry)) out.push({ entry, port, cidrs, named });
  }
  if (bad.length > 0)
    throw new PolicyNotEnforceableError(
      `the kubernetes backend cannot enforce the network allowlist: ${bad.join('; ')}`,
      { network: bad.join('; ') },
      context,
    );
  return out;
}

/**
 * The NetworkPolicy selecting the sandbox's pod: no ingress; no egress when `allowed` is
 * undefined, else TCP to each entry's addresses and port (and DNS when a name is listed).
 */
export function egressPolicy(
  id: string,
  labels: Record<string, string>,
  allowed: readonly AllowedDestination[] | undefined,
) {
  const egress = (allowed ?? []).map((d) => ({
    to: d.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ports: [{ protocol: 'TCP', port: d.port }],
  }));
  const dns = (allowed ?? []).some((d) => d.named)
    ? [
        {
          to: [{ namespaceSelector: {}, podSelector: { matchLabels: DNS_LABELS } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ]
    : [];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: names.egress(id),
      labels: labelsFor(id, 'egress', labels),
      ...(allowed
        ? {
            annotations: {
              [ALLOWLIST_ANNOTATION]: JSON.stringify(
                Object.fromEntries(allowed.map((d) => [d.entry, d.cidrs])),
              ),
            },
          }
        : {}),
    },
    spec: {
      podSelector: { matchLabels: { [ID_LABEL]: id.toLowerCase() } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: [...egress, ...dns],
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the NetworkPolicy as read back (V1NetworkPolicy), read defensively
type Policy = any;

/**
 * What a read-back NetworkPolicy lets the pod reach, checked against the allowlist: undefined
 * when it is exactly the list (plus DNS when a name is listed), else why not.
 */
export function allowlistMismatch(allow: readonly string[], egress: Policy | undefined): string | undefined {
  if (!egress) return 'no NetworkPolicy was read back';
  if (!(egress.spec?.policyTypes ?? []).includes('Egress')) return 'the NetworkPolicy does not govern egress';
  let resolved: Record<string, string[]>;
  try {
    resolved = JSON.parse(egress.metadata?.annotations?.[ALLOWLIST_ANNOTATION] ?? '');
  } catch {
    return `the NetworkPolicy has no readable ${ALLOWLIST_ANNOTATION} annotation`;
  }
  const expected = new Set<string>();
  for (const entry of allow) {
    const cidrs = resolved[entry];
    if (!cidrs?.length) return `${entry} is not in the NetworkPolicy`;
    const port = Number(entry.slice(entry.lastIndexOf(':') + 1));
    for (const cidr of cidrs) expected.add(`${cidr} tcp/${port}`);
  }
  const found = new Set<string>();
  for (const rule of egress.spec?.egress ?? []) {
    const ports: { protocol?: string; port?: number; endPort?: number }[] = rule.ports ?? [];
    const to: { ipBlock?: { cidr?: string; except?: string[] }; podSelector?: unknown }[] = rule.to ?? [];
    const isDns =
      to.length > 0 &&
      to.every(
        (peer) =>
          !peer.ipBlock && JSON.stringify(peer.podSelector) === JSON.stringify({ matchLabels: DNS_LABELS }),
      ) &&
      ports.length > 0 &&
      ports.every((p) => p.port === 53 && p.endPort === undefined);
    if (isDns) continue;
    if (to.length === 0 || ports.length === 0) return 'an egress rule allows every destination or every port';
    for (const peer of to) {
      if (!peer.ipBlock?.cidr || peer.ipBlock.except?.length || !/\/(32|128)$/.test(peer.ipBlock.cidr))
        return `an egress rule allows more than single addresses (${JSON.stringify(peer)})`;
      for (const p of ports) {
        if ((p.protocol ?? 'TCP') !== 'TCP' || p.endPort !== undefined || typeof p.port !== 'number')
          return `an egress rule allows ${JSON.stringify(p)}`;
        found.add(`${peer.ipBlock.cidr} tcp/${p.port}`);
      }
    }
  }
  const extra = [...found].filter((x) => !expected.has(x));
  const missing = [...expected].filter((x) => !found.has(x));
  if (extra.length) return `the NetworkPolicy also allows ${extra.join(', ')}`;
  if (missing.length) return `the NetworkPolicy does not allow ${missing.join(', ')}`;
  return undefined;
}
