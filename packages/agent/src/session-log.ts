/**
 * The session log: one JSON object per line for everything a run does (model turns, tool calls
 * and results, checkpoints, retries and fallbacks, limit stops), secrets redacted, written
 * synchronously so that a crash loses nothing already done. `readSessionLog` and
 * `summarizeSessionLog` read one back (the CLI's `agentbox log summarize FILE`).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@agentbox/core';
import { redactValue } from './redact.js';

/** One line of the log: when, its order, its type, and the fields of that type. */
export interface SessionLogEntry {
  ts: string;
  seq: number;
  type: string;
  [field: string]: unknown;
}

export interface SessionLogOptions {
  /** Values to hide wherever they appear (API keys, tokens); secret-shaped tokens are hidden anyway. */
  secrets?: readonly string[];
}

export class SessionLog {
  readonly path: string;
  readonly #secrets: readonly string[];
  #fd: number | undefined;
  #seq = 0;

  /** Opens (appending) or creates the file, owner-only, with its folder. */
  constructor(path: string, options: SessionLogOptions = {}) {
    this.path = path;
    this.#secrets = options.secrets ?? [];
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, 'a', 0o600);
  }

  write(type: string, fields: Record<string, unknown> = {}): void {
    if (this.#fd === undefined) return;
    const entry = redactValue(
      { ts: new Date().toISOString(), seq: ++this.#seq, type, ...fields },
      this.#secrets,
    );
    writeSync(this.#fd, `${JSON.stringify(entry)}\n`);
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * The entries of a log. A last line cut short (the writer died mid-line) is skipped and reported
 * in `truncated`; a bad line anywhere else is an error naming it.
 */
export function readSessionLog(path: string): { entries: SessionLogEntry[]; truncated: boolean } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`no session log at ${path}`, { operation: 'readSessionLog', subject: path });
    throw new InvalidArgumentError(`cannot read the session log ${path}: ${(error as Error).message}`, {
      operation: 'readSessionLog',
      cause: error,
    });
  }
  const lines = text.split('\n');
  const entries: SessionLogEntry[] = [];
  let truncated = false;
  for (const [index, line] of lines.entries()) {
    if (!line.trim()) continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      const last = lines.slice(index + 1).every((l) => !l.trim());
      if (last && !text.endsWith('\n')) {
        truncated = true;
        break;
      }
      throw new InvalidArgumentError(`${path}:${index + 1}: not a JSON line`, {
        operation: 'readSessionLog',
      });
    }
    const e = entry as Partial<SessionLogEntry>;
    if (!e || typeof e !== 'object' || typeof e.type !== 'string' || typeof e.ts !== 'string')
      throw new InvalidArgumentError(`${path}:${index + 1}: not a session log entry (no type or ts)`, {
        operation: 'readSessionLog',
      });
    entries.push(e as SessionLogEntry);
  }
  return { entries, truncated };
}

export interface SessionSummary {
  task: string | undefined;
  /** Models that answered, in order of first appearance. */
  models: string[];
  startedAt: string | undefined;
  durationMs: number | undefined;
  steps: number;
  /** Calls per tool name, and how many of them failed. */
  toolCalls: Record<string, { calls: number; failed: number }>;
  /** Checkpoints, those the loop took before a destructive step with its reason in `auto`. */
  checkpoints: { id: string; label: string | undefined; auto?: string }[];
  rollbacks: string[];
  /** Commands that needed approval and were denied. */
  denied: { step: number; reasons: string[] }[];
  /** Skills and memory files the Skills Guard moved to quarantine. */
  quarantined: { target: string; path: string }[];
  retries: number;
  fallbacks: { from: string; to: string; error: string }[];
  usage: { inputTokens: number; outputTokens: number };
  costUsd: number | undefined;
  /** How the run ended: finished, a limit, the kill switch, an error, or undefined if the log stops short. */
  stop: { reason: string; message: string } | undefined;
  truncated: boolean;
}

export function summarizeSessionLog(log: {
  entries: readonly SessionLogEntry[];
  truncated?: boolean;
}): SessionSummary {
  const summary: SessionSummary = {
    task: undefined,
    models: [],
    startedAt: undefined,
    durationMs: undefined,
    steps: 0,
    toolCalls: {},
    checkpoints: [],
    rollbacks: [],
    denied: [],
    quarantined: [],
    retries: 0,
    fallbacks: [],
    usage: { inputTokens: 0, outputTokens: 0 },
    costUsd: undefined,
    stop: undefined,
    truncated: log.truncated ?? false,
  };
  for (const e of log.entries) {
    const str = (key: string) => (typeof e[key] === 'string' ? (e[key] as string) : undefined);
    switch (e.type) {
      case 'run_start':
        summary.task = str('task');
        summary.startedAt = e.ts;
        break;
      case 'model_turn': {
        summary.steps = Math.max(summary.steps, typeof e.step === 'number' ? e.step : summary.steps + 1);
        const model = str('model');
        if (model && !summary.models.includes(model)) summary.models.push(model);
        const usage = e.usage as { inputTokens?: number; outputTokens?: number } | undefined;
        summary.usage.inputTokens += usage?.inputTokens ?? 0;
        summary.usage.outputTokens += usage?.outputTokens ?? 0;
        break;
      }
      case 'tool_result': {
        const name = str('name') ?? '?';
        const tally = summary.toolCalls[name] ?? { calls: 0, failed: 0 };
        summary.toolCalls[name] = tally;
        tally.calls++;
        if (e.ok === false || (typeof e.exitCode === 'number' && e.exitCode !== 0)) tally.failed++;
        break;
      }
      case 'checkpoint': {
        const auto = str('auto');
        summary.checkpoints.push({ id: str('id') ?? '?', label: str('label'), ...(auto ? { auto } : {}) });
        break;
      }
      case 'approval':
        if (e.allowed === false)
          summary.denied.push({
            step: typeof e.step === 'number' ? e.step : 0,
            reasons: Array.isArray(e.reasons) ? e.reasons.map(String) : [],
          });
        break;
      case 'guard_quarantine':
        summary.quarantined.push({ target: str('target') ?? '?', path: str('path') ?? '?' });
        break;
      case 'rollback':
        summary.rollbacks.push(str('id') ?? '?');
        break;
      case 'model_retry':
        summary.retries++;
        break;
      case 'model_fallback':
        summary.fallbacks.push({ from: str('from') ?? '?', to: str('to') ?? '?', error: str('error') ?? '' });
        break;
      case 'run_end':
        summary.stop = { reason: str('reason') ?? '?', message: str('message') ?? '' };
        if (typeof e.costUsd === 'number') summary.costUsd = e.costUsd;
        if (typeof e.durationMs === 'number') summary.durationMs = e.durationMs;
        break;
    }
  }
  return summary;
}

/** The summary as a few readable lines. */
export function formatSessionSummary(s: SessionSummary): string {
  const lines = [
    `task: ${s.task ?? '(not logged)'}`,
    `ended: ${s.stop ? `${s.stop.reason}${s.stop.message ? ` (${s.stop.message})` : ''}` : 'no end in the log (still running, or it died)'}`,
    `steps: ${s.steps}${s.durationMs === undefined ? '' : `, ${(s.durationMs / 1000).toFixed(1)} s`}`,
    `models: ${s.models.join(', ') || '(none)'}`,
    `tokens: ${s.usage.inputTokens} in, ${s.usage.outputTokens} out${s.costUsd === undefined ? '' : `, estimated cost $${s.costUsd.toFixed(4)}`}`,
    `tool calls: ${
      Object.entries(s.toolCalls)
        .map(([name, t]) => `${name} ${t.calls}${t.failed ? ` (${t.failed} failed)` : ''}`)
        .join(', ') || 'none'
    }`,
    `checkpoints: ${s.checkpoints.map((c) => `${c.id}${c.label ? ` (${c.label})` : ''}${c.auto ? ' [automatic]' : ''}`).join(', ') || 'none'}`,
  ];
  if (s.rollbacks.length) lines.push(`rollbacks: ${s.rollbacks.join(', ')}`);
  if (s.denied.length)
    lines.push(
      `denied commands: ${s.denied.map((d) => `step ${d.step} (${d.reasons.join('; ')})`).join(', ')}`,
    );
  if (s.quarantined.length)
    lines.push(`quarantined: ${s.quarantined.map((q) => `${q.target} in ${q.path}`).join(', ')}`);
  if (s.retries || s.fallbacks.length)
    lines.push(
      `model retries: ${s.retries}; fallbacks: ${s.fallbacks.map((f) => `${f.from} → ${f.to} (${f.error})`).join('; ') || 'none'}`,
    );
  if (s.truncated) lines.push('note: the last line of the log was cut short');
  return lines.join('\n');
}
