import { describe, expect, it } from 'vitest';
import { caseIds, validateOptions } from '../src/index.js';
import { groups } from '../src/runner.js';

const open = () => Promise.reject(new Error('not used'));

describe('runConformance options', () => {
  it('has at least 60 cases, each with a unique group.name id', () => {
    expect(caseIds.length).toBeGreaterThanOrEqual(60);
    expect(new Set(caseIds).size).toBe(caseIds.length);
    expect(groups.map((g) => g.name)).toEqual([
      'exec',
      'timeouts',
      'output',
      'files',
      'checkpoints',
      'lifecycle',
      'errors',
      'tamper',
      'pool',
    ]);
    for (const group of groups)
      for (const c of group.cases) expect(c.id).toMatch(new RegExp(`^${group.name}\\.[a-z0-9-]+$`));
  });

  it('accepts known ids in skip', () => {
    expect(() =>
      validateOptions({ name: 'x', open, skip: { 'exec.missing-program': 'because' } }),
    ).not.toThrow();
  });

  it('fails loudly on an unknown id in skip, naming it', () => {
    expect(() => validateOptions({ name: 'x', open, skip: { 'exec.no-such-case': 'typo' } })).toThrow(
      /unknown case id\(s\) in skip: exec\.no-such-case/,
    );
  });

  it('requires a reason for every skip', () => {
    expect(() => validateOptions({ name: 'x', open, skip: { 'exec.missing-program': ' ' } })).toThrow(
      /needs a reason/,
    );
  });

  it('requires a name, an open function and a positive timeScale', () => {
    expect(() => validateOptions({ name: '', open })).toThrow(/name/);
    expect(() => validateOptions({ name: 'x', open: undefined as never })).toThrow(/open/);
    expect(() => validateOptions({ name: 'x', open, timeScale: 0 })).toThrow(/timeScale/);
  });
});
