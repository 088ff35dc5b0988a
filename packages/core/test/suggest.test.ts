import { describe, expect, it } from 'vitest';
import { closestName, didYouMean, editDistance } from '../src/suggest.js';

describe('did you mean', () => {
  it('counts insertions, deletions, substitutions and swaps as one edit each', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('imag', 'image')).toBe(1);
    expect(editDistance('dokcer', 'docker')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the closest candidate, ignoring case, and nothing for a word far from all', () => {
    const keys = ['cwd', 'env', 'stdin', 'timeoutMs', 'signal', 'killGraceMs', 'maxOutputBytes'];
    expect(closestName('timeoutMS', keys)).toBe('timeoutMs');
    expect(closestName('timeout', keys)).toBe('timeoutMs');
    expect(closestName('sigal', keys)).toBe('signal');
    expect(closestName('zzz', keys)).toBe(undefined);
    expect(didYouMean('dokcer', ['docker', 'local', 'ssh'])).toBe(' (did you mean "docker"?)');
    expect(didYouMean('qqq', ['docker'])).toBe('');
  });
});
