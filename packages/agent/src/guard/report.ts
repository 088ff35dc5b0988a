/** The guard report as a person reads it. */
import type { GuardReport } from './scanner.js';

export function formatGuardReport(report: GuardReport): string {
  const counts = new Map<string, number>();
  for (const f of report.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  const tally = ['critical', 'high', 'medium', 'info']
    .filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
  const lines = [
    `Skills Guard: ${report.kind} "${report.target}" is ${report.verdict.toUpperCase()}` +
      ` (${report.files} file${report.files === 1 ? '' : 's'}, ${report.bytes} bytes; ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'}${tally ? `: ${tally}` : ''})`,
  ];
  for (const f of report.findings) {
    const where = f.line > 0 ? `${f.file}:${f.line}` : f.file;
    lines.push(`  ${f.severity.padEnd(8)} ${f.category.padEnd(19)} ${where}  ${f.reason} [${f.rule}]`);
    if (f.excerpt) lines.push(`           | ${f.excerpt}`);
  }
  return `${lines.join('\n')}\n`;
}
