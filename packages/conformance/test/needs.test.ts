import type { Capabilities, CapabilityName } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { groups, missingCapability } from '../src/runner.js';

const everything: Capabilities = {
  isolation: 'container',
  checkpoints: true,
  spawn: true,
  stdin: true,
  kill: true,
  nonRootUser: true,
  networkPolicy: true,
  reattach: true,
};

const NAMES: readonly CapabilityName[] = [
  'checkpoints',
  'spawn',
  'stdin',
  'kill',
  'nonRootUser',
  'networkPolicy',
  'reattach',
];

describe('cases that need a capability', () => {
  it('run when the backend has every capability they need', () => {
    expect(missingCapability(undefined, everything)).toBeUndefined();
    expect(missingCapability([], everything)).toBeUndefined();
    expect(missingCapability(['spawn', 'stdin', 'kill'], everything)).toBeUndefined();
  });

  it('skip with the backend’s own reason for the first missing one', () => {
    const caps: Capabilities = {
      ...everything,
      stdin: false,
      kill: false,
      unsupported: { stdin: 'the API takes no input', kill: 'the API can only terminate' },
    };
    expect(missingCapability(['spawn', 'stdin', 'kill'], caps)).toBe(
      'needs capability stdin, which this backend lacks: the API takes no input',
    );
    expect(missingCapability(['kill'], caps)).toMatch(/kill.*the API can only terminate$/);
  });

  it('say so when the backend gives no reason, and never run on a capability that is not true', () => {
    expect(missingCapability(['stdin'], { ...everything, stdin: false })).toMatch(/stdin.*gives no reason/);
    expect(
      missingCapability(['stdin'], { ...everything, stdin: false, unsupported: { stdin: '  ' } }),
    ).toMatch(/gives no reason/);
    // A capability a backend built before the flag existed does not declare counts as missing.
    const { kill: _, ...old } = everything;
    expect(missingCapability(['kill'], old as Capabilities)).toMatch(/kill/);
  });

  it('the suite declares needs on the cases that use stdin, spawn and kill, with known names only', () => {
    const needs = new Map(groups.flatMap((g) => g.cases.map((c) => [c.id, c.needs ?? []] as const)));
    for (const list of needs.values()) for (const name of list) expect(NAMES).toContain(name);
    expect(needs.get('exec.stdin-text')).toContain('stdin');
    expect(needs.get('exec.spawn-stdin')).toEqual(expect.arrayContaining(['spawn', 'stdin']));
    expect(needs.get('exec.spawn-kill')).toEqual(expect.arrayContaining(['spawn', 'kill']));
    expect(needs.get('timeouts.spawn-timeout')).toContain('spawn');
    // Plain exec without input needs nothing beyond the contract.
    expect(needs.get('exec.exit-codes')).toEqual([]);
  });
});
