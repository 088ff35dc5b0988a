/** The vocabulary shared by the command classifier and the Skills Guard: categories, severities, verdicts. */

export type GuardCategory =
  | 'credentials'
  | 'exfiltration'
  | 'prompt-injection'
  | 'destructive'
  | 'persistence'
  | 'reverse-shell'
  | 'remote-code'
  | 'obfuscation'
  | 'hidden-unicode'
  | 'symlink-escape'
  | 'oversized-or-binary'
  | 'scanner-error';

/** `info` is noted and harmless; `medium` makes a skill "caution"; `high` and `critical` make it "dangerous". */
export type Severity = 'info' | 'medium' | 'high' | 'critical';

export type Verdict = 'safe' | 'caution' | 'dangerous';

/** One thing a rule matched in a command. */
export interface CommandFinding {
  rule: string;
  category: GuardCategory;
  severity: Severity;
  /** Why this is risky, in words the model and the operator both understand. */
  reason: string;
}

/** A command finding placed in a file. */
export interface GuardFinding extends CommandFinding {
  /** Path relative to the skill folder (or the memory file's name). */
  file: string;
  /** 1-based; 0 when the finding is about the whole file. */
  line: number;
  /** The offending text, shortened. */
  excerpt: string;
}

const RANK: Record<Severity, number> = { info: 0, medium: 1, high: 2, critical: 3 };

export function severityRank(severity: Severity): number {
  return RANK[severity];
}

export function maxSeverity(findings: readonly { severity: Severity }[]): Severity {
  let worst: Severity = 'info';
  for (const f of findings) if (RANK[f.severity] > RANK[worst]) worst = f.severity;
  return worst;
}

export function verdictOf(findings: readonly { severity: Severity }[]): Verdict {
  const worst = RANK[maxSeverity(findings)];
  if (worst >= RANK.high) return 'dangerous';
  if (worst >= RANK.medium) return 'caution';
  return 'safe';
}

/** One severity lower (never below `info`): used where text is quoted or shown as a bad example. */
export function lowerSeverity(severity: Severity, steps = 1): Severity {
  const order: Severity[] = ['info', 'medium', 'high', 'critical'];
  return order[Math.max(0, RANK[severity] - steps)]!;
}

export function shorten(text: string, max = 160): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
