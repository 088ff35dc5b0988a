import { beforeAll, describe, expect, it } from 'vitest';
import { type ScannedSample, scanCorpus } from './corpus.js';

describe('Skills Guard corpus', () => {
  let samples: ScannedSample[] = [];
  beforeAll(async () => {
    samples = await scanCorpus();
  });

  it('has at least 60 malicious and 60 benign samples', () => {
    expect(samples.filter((s) => s.kind === 'malicious').length).toBeGreaterThanOrEqual(60);
    expect(samples.filter((s) => s.kind === 'benign').length).toBeGreaterThanOrEqual(60);
  });

  it('flags every malicious sample, nearly all as dangerous, and leaves benign ones safe', () => {
    const malicious = samples.filter((s) => s.kind === 'malicious');
    const benign = samples.filter((s) => s.kind === 'benign');
    const count = (list: ScannedSample[], verdict: string) =>
      list.filter((s) => s.report.verdict === verdict).length;
    const dangerousShare = count(malicious, 'dangerous') / malicious.length;
    const benignFlagged = benign.filter((s) => s.report.verdict !== 'safe');
    const falsePositiveShare = benignFlagged.length / benign.length;
    const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(
      [
        `Skills Guard corpus: ${malicious.length} malicious, ${benign.length} benign`,
        `  malicious: ${count(malicious, 'dangerous')} dangerous (${percent(dangerousShare)}), ${count(malicious, 'caution')} caution, ${count(malicious, 'safe')} safe`,
        `  benign:    ${count(benign, 'safe')} safe, ${count(benign, 'caution')} caution, ${count(benign, 'dangerous')} dangerous (${percent(falsePositiveShare)} above safe)`,
        ...malicious
          .filter((s) => s.report.verdict !== 'dangerous')
          .map((s) => `  malicious not dangerous: ${s.name} (${s.report.verdict})`),
        ...benignFlagged.map(
          (s) => `  benign above safe: ${s.name} (${s.report.verdict}: ${s.report.findings[0]?.rule})`,
        ),
      ].join('\n'),
    );
    expect(malicious.filter((s) => s.report.verdict === 'safe').map((s) => s.name)).toEqual([]);
    expect(dangerousShare).toBeGreaterThanOrEqual(0.9);
    expect(falsePositiveShare).toBeLessThanOrEqual(0.05);
  });

  it('places each finding in a file with a line, a category and a severity', () => {
    for (const s of samples.filter((x) => x.kind === 'malicious')) {
      const top = s.report.findings[0]!;
      expect(top.file, s.name).not.toBe('');
      expect(top.line, s.name).toBeGreaterThanOrEqual(0);
      expect(['medium', 'high', 'critical'], s.name).toContain(top.severity);
    }
  });
});
