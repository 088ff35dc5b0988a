/** Which policy controls Vercel Sandbox enforces, read back from the sandbox where it can be. */
import type { ControlStatus, EnforcementReport, ParsedPolicy } from '@agentbox/core';
import { enforcementReport } from '@agentbox/core/backend';
import { MAX_TAGS } from './labels.js';

const no = (detail: string): ControlStatus => ({ status: 'not-supported', detail });
const yes = (detail: string): ControlStatus => ({ status: 'enforced', detail });

/** The vCPU counts Vercel offers; memory comes with them (2048 MiB per vCPU). */
const VCPUS = [1, 2, 4, 8];

/** What the created sandbox reports back (its network policy and vCPUs), when there is one. */
export interface VercelReadBack {
  networkPolicy: unknown;
  vcpus: number | undefined;
}

/** The vCPUs to ask for: only a `limits.cpus` Vercel can give exactly. */
export function vercelVcpus(policy: ParsedPolicy): number | undefined {
  const cpus = policy.limits?.cpus;
  return cpus !== undefined && VCPUS.includes(cpus) ? cpus : undefined;
}

/** The report for `policy`; `created` (when there is a sandbox) is what Vercel says it got. */
export function vercelEnforcement(
  policy: ParsedPolicy,
  created: VercelReadBack | undefined,
): EnforcementReport {
  const net = policy.network?.mode;
  const cpus = policy.limits?.cpus;
  const userTags = Object.keys(policy.labels ?? {}).length;
  return enforcementReport(no('not offered by Vercel Sandbox'), {
    isolation: yes('each sandbox is its own Vercel Sandbox microVM'),
    network:
      net === 'none'
        ? created === undefined || created.networkPolicy === 'deny-all'
          ? yes('networkPolicy deny-all')
          : no(`Vercel reported the network policy ${JSON.stringify(created.networkPolicy)}`)
        : net === 'allowlist'
          ? no("Vercel's network policy allows domains (all their ports), not host:port pairs")
          : yes('allow-all'),
    labels:
      userTags <= MAX_TAGS - 2
        ? yes('Vercel tags')
        : no(`Vercel allows ${MAX_TAGS} tags and the backend uses 2: at most ${MAX_TAGS - 2} labels fit`),
    nonRootUser: yes("commands run as Vercel's non-root sandbox user (the backend never uses sudo)"),
    'limits.cpus':
      cpus === undefined
        ? yes('Vercel default vCPUs')
        : vercelVcpus(policy) === undefined
          ? no(`Vercel offers ${VCPUS.join(', ')} vCPUs, not ${cpus}`)
          : created === undefined || created.vcpus === cpus
            ? yes(`${cpus} vCPUs`)
            : no(`Vercel reported ${created.vcpus} vCPUs`),
    'limits.memoryMiB': no('Vercel gives 2048 MiB per vCPU; memory is not set on its own'),
    'limits.diskMiB': no('not offered by Vercel Sandbox'),
    checkpointIntegrity: yes(
      'a Vercel snapshot stops the session first, and a rollback starts a new sandbox from it',
    ),
  });
}
