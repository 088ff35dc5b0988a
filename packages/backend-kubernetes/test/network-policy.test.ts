/**
 * The allowlist's NetworkPolicy as data: what is written for names and addresses, and the read
 * back check that reports anything wider than the list as not enforced.
 */
import { describe, expect, it } from 'vitest';
import {
  type AllowedDestination,
  allowlistMismatch,
  egressPolicy,
  resolveAllowlist,
} from '../src/network-policy.js';

const context = { backend: 'kubernetes', sandboxId: 'sb1', operation: 'open' };
const named: AllowedDestination = {
  entry: 'api.example:443',
  port: 443,
  cidrs: ['10.0.0.7/32'],
  named: true,
};
const literal: AllowedDestination = {
  entry: '10.0.0.9:8080',
  port: 8080,
  cidrs: ['10.0.0.9/32'],
  named: false,
};

describe('kubernetes allowlist NetworkPolicy', () => {
  it('allows each entry on its port only, and DNS to kube-dns only when a name is listed', () => {
    const withName = egressPolicy('SB1', {}, [named, literal]);
    expect(withName.spec.egress).toEqual([
      { to: [{ ipBlock: { cidr: '10.0.0.7/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      { to: [{ ipBlock: { cidr: '10.0.0.9/32' } }], ports: [{ protocol: 'TCP', port: 8080 }] },
      {
        to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
    ]);
    expect(withName.spec.podSelector).toEqual({ matchLabels: { 'agentbox.dev/sandbox-id': 'sb1' } });
    expect(allowlistMismatch(['api.example:443', '10.0.0.9:8080'], withName)).toBeUndefined();
    expect(egressPolicy('sb1', {}, [literal]).spec.egress).toHaveLength(1);
    expect(egressPolicy('sb1', {}, undefined).spec.egress).toEqual([]);
  });

  it('reports a read-back policy wider than the list, or missing an entry', () => {
    const good = egressPolicy('sb1', {}, [literal]);
    const widen = (rule: unknown) => ({
      ...good,
      spec: { ...good.spec, egress: [...good.spec.egress, rule] },
    });
    expect(allowlistMismatch(['10.0.0.9:8080'], widen({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }))).toMatch(
      /every destination or every port/,
    );
    expect(
      allowlistMismatch(
        ['10.0.0.9:8080'],
        widen({ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ protocol: 'TCP', port: 80 }] }),
      ),
    ).toMatch(/more than single addresses/);
    expect(
      allowlistMismatch(
        ['10.0.0.9:8080'],
        widen({ to: [{ ipBlock: { cidr: '10.0.0.9/32' } }], ports: [{ protocol: 'TCP', port: 22 }] }),
      ),
    ).toBe('the NetworkPolicy also allows 10.0.0.9/32 tcp/22');
    expect(
      allowlistMismatch(
        ['10.0.0.9:8080'],
        widen({ to: [{ ipBlock: { cidr: '10.0.0.9/32' } }], ports: [{ port: 1, endPort: 65535 }] }),
      ),
    ).toMatch(/allows \{"port":1,"endPort":65535\}/);
    expect(allowlistMismatch(['10.0.0.9:8080', '10.0.0.10:80'], good)).toBe(
      '10.0.0.10:80 is not in the NetworkPolicy',
    );
    expect(allowlistMismatch(['10.0.0.9:8080'], { ...good, spec: { ...good.spec, egress: [] } })).toBe(
      'the NetworkPolicy does not allow 10.0.0.9/32 tcp/8080',
    );
    expect(allowlistMismatch(['10.0.0.9:8080'], undefined)).toBe('no NetworkPolicy was read back');
  });

  it('resolves address literals as they are and refuses loopback with a typed error', async () => {
    expect(await resolveAllowlist(['10.1.2.3:443', '[fd00::1]:80'], context)).toEqual([
      { entry: '10.1.2.3:443', port: 443, cidrs: ['10.1.2.3/32'], named: false },
      { entry: '[fd00::1]:80', port: 80, cidrs: ['fd00::1/128'], named: false },
    ]);
    await expect(resolveAllowlist(['127.0.0.1:80', 'localhost:81'], context)).rejects.toMatchObject({
      code: 'POLICY_NOT_ENFORCEABLE',
      message: expect.stringMatching(
        /127\.0\.0\.1:80: 127\.0\.0\.1 is loopback.*localhost:81: .* is loopback/,
      ),
    });
    await expect(resolveAllowlist(['10.1.2.3:0'], context)).rejects.toMatchObject({
      code: 'POLICY_NOT_ENFORCEABLE',
    });
  });
});
