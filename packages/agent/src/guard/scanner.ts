/**
 * The Skills Guard scanner: judges every file of a skill folder (or one memory file) and
 * returns findings with file, line, category and severity, and a verdict. It never throws:
 * anything that goes wrong while scanning is itself a critical finding (fail closed).
 */
import { posix } from 'node:path';
import { classifyCode } from './code-rules.js';
import { classifyShell, type ShellState } from './command-rules.js';
import {
  type CommandFinding,
  type GuardFinding,
  lowerSeverity,
  type Severity,
  severityRank,
  shorten,
  type Verdict,
  verdictOf,
} from './findings.js';
import { isSecretPath } from './paths.js';
import { hiddenCommentFindings, injectionFindings, type LineFinding, unicodeFindings } from './text-rules.js';

/** One entry of a skill folder, as the guard sees it (host folder, sandbox or a tool call). */
export interface SkillFile {
  /** Relative to the skill folder, with `/` separators. */
  path: string;
  /** The contents (possibly only the first bytes of an oversized file); absent for a symlink. */
  data?: Uint8Array;
  /** The real size in bytes. */
  size: number;
  /** Set for a symlink: where it points, as written. */
  symlinkTarget?: string;
}

export interface GuardLimits {
  /** Largest file scanned and kept (default 256 KiB). */
  maxFileBytes?: number;
  /** Largest skill in all (default 1 MiB). */
  maxTotalBytes?: number;
  /** Most files in one skill (default 64). */
  maxFiles?: number;
}

export interface GuardReport {
  /** The skill's name or the memory file's path. */
  target: string;
  kind: 'skill' | 'memory';
  verdict: Verdict;
  findings: GuardFinding[];
  files: number;
  bytes: number;
  scannedAt: string;
}

export const DEFAULT_GUARD_LIMITS: Required<GuardLimits> = {
  maxFileBytes: 256 * 1024,
  maxTotalBytes: 1024 * 1024,
  maxFiles: 64,
};

/** Scans a skill's files. Never throws: an internal error is reported as a dangerous verdict. */
export function scanSkillFiles(
  target: string,
  files: readonly SkillFile[],
  options: GuardLimits & { kind?: 'skill' | 'memory' } = {},
): GuardReport {
  const limits = { ...DEFAULT_GUARD_LIMITS, ...options };
  const findings: GuardFinding[] = [];
  let bytes = 0;
  try {
    if (files.length > limits.maxFiles) {
      findings.push(
        wholeFile(
          '.',
          'too-many-files',
          'oversized-or-binary',
          'high',
          `${files.length} files; at most ${limits.maxFiles} are kept`,
        ),
      );
    }
    for (const file of files) {
      bytes += file.size;
      findings.push(...scanOneFile(file, limits));
    }
    if (bytes > limits.maxTotalBytes) {
      findings.push(
        wholeFile(
          '.',
          'skill-too-large',
          'oversized-or-binary',
          'high',
          `${bytes} bytes in all; at most ${limits.maxTotalBytes}`,
        ),
      );
    }
  } catch (error) {
    findings.push(scannerError('.', error));
  }
  return {
    target,
    kind: options.kind ?? 'skill',
    verdict: verdictOf(findings),
    findings: sortFindings(findings),
    files: files.length,
    bytes,
    scannedAt: new Date().toISOString(),
  };
}

/** Scans one memory file (markdown the agent reads back in later runs). */
export function scanMemoryText(
  path: string,
  content: string | Uint8Array,
  limits: GuardLimits = {},
): GuardReport {
  const data = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  return scanSkillFiles(path, [{ path: posix.basename(path) || 'memory.md', data, size: data.byteLength }], {
    ...limits,
    maxFiles: 1,
    kind: 'memory',
  });
}

export function scannerError(file: string, error: unknown): GuardFinding {
  const message = error instanceof Error ? error.message : String(error);
  return wholeFile(
    file,
    'scanner-error',
    'scanner-error',
    'critical',
    `the scanner failed (${message}); failing closed`,
  );
}

function wholeFile(
  file: string,
  rule: string,
  category: GuardFinding['category'],
  severity: Severity,
  reason: string,
): GuardFinding {
  return { file, line: 0, rule, category, severity, reason, excerpt: '' };
}

function sortFindings(findings: GuardFinding[]): GuardFinding[] {
  return findings.sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) || a.file.localeCompare(b.file) || a.line - b.line,
  );
}

function scanOneFile(file: SkillFile, limits: Required<GuardLimits>): GuardFinding[] {
  const out: GuardFinding[] = [];
  if (file.symlinkTarget !== undefined) {
    const resolved = posix.normalize(posix.join(posix.dirname(file.path), file.symlinkTarget));
    if (posix.isAbsolute(file.symlinkTarget) || resolved === '..' || resolved.startsWith('../')) {
      const secret = isSecretPath(file.symlinkTarget) ? ', a credential file' : '';
      out.push(
        wholeFile(
          file.path,
          'symlink-escape',
          'symlink-escape',
          'critical',
          `a symlink to ${file.symlinkTarget}, outside the skill folder${secret}`,
        ),
      );
    }
    return out;
  }
  const data = file.data ?? new Uint8Array();
  if (file.size > limits.maxFileBytes) {
    out.push(
      wholeFile(
        file.path,
        'file-too-large',
        'oversized-or-binary',
        'high',
        `${file.size} bytes; files over ${limits.maxFileBytes} are not kept`,
      ),
    );
  }
  const binary = binaryKind(data, file.path);
  if (binary) {
    if (binary.severity !== 'info' || binary.note)
      out.push(wholeFile(file.path, binary.rule, 'oversized-or-binary', binary.severity, binary.reason));
    return out;
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data.subarray(0, limits.maxFileBytes));
  const place = (found: LineFinding[] | { line: number; finding: CommandFinding }[], lines: string[]) =>
    found.map(
      (f): GuardFinding => ({
        ...f.finding,
        file: file.path,
        line: f.line,
        excerpt: shorten('excerpt' in f ? f.excerpt : (lines[f.line - 1] ?? '')),
      }),
    );
  const lines = text.split('\n');
  out.push(...place(unicodeFindings(text), lines));
  const language = languageOf(file.path, lines[0] ?? '');
  if (language === 'shell') {
    out.push(...place(shellFindings(text, 1), lines));
    out.push(...place(commentInjection(lines), lines));
  } else if (language === 'code') {
    out.push(...place(classifyCode(text), lines));
    out.push(...place(commentInjection(lines), lines));
  } else if (language === 'markdown') {
    out.push(...place(markdownFindings(text), lines));
  } else {
    out.push(...place(injectionFindings(text), lines));
  }
  return dedupe(out);
}

function dedupe(findings: GuardFinding[]): GuardFinding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.file}:${f.line}:${f.rule}:${f.severity}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function binaryKind(
  data: Uint8Array,
  path: string,
): { rule: string; severity: Severity; reason: string; note?: boolean } | undefined {
  const head = data.subarray(0, 8192);
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (
    starts(0x7f, 0x45, 0x4c, 0x46) ||
    starts(0xcf, 0xfa, 0xed, 0xfe) ||
    starts(0xce, 0xfa, 0xed, 0xfe) ||
    starts(0xca, 0xfe, 0xba, 0xbe) ||
    (starts(0x4d, 0x5a) && head.includes(0))
  )
    return {
      rule: 'executable-binary',
      severity: 'critical',
      reason: 'a compiled executable: its behaviour cannot be reviewed',
    };
  const image =
    starts(0x89, 0x50, 0x4e, 0x47) ||
    starts(0xff, 0xd8, 0xff) ||
    starts(0x47, 0x49, 0x46, 0x38) ||
    (starts(0x52, 0x49, 0x46, 0x46) && head[8] === 0x57);
  if (image && /\.(?:png|jpe?g|gif|webp)$/i.test(path))
    return { rule: 'image', severity: 'info', reason: 'an image' };
  if (
    starts(0x50, 0x4b, 0x03, 0x04) ||
    starts(0x1f, 0x8b) ||
    starts(0x37, 0x7a, 0xbc, 0xaf) ||
    starts(0x42, 0x5a, 0x68)
  )
    return {
      rule: 'archive',
      severity: 'high',
      reason: 'an archive: its contents are not scanned',
      note: true,
    };
  if (head.includes(0) || (image && !/\.(?:png|jpe?g|gif|webp)$/i.test(path)))
    return {
      rule: 'binary-content',
      severity: 'high',
      reason: 'binary content where text is expected',
      note: true,
    };
  return undefined;
}

type Language = 'shell' | 'code' | 'markdown' | 'text';

function languageOf(path: string, firstLine: string): Language {
  if (/^#!.*\b(?:ba|z|da|k|a)?sh\b/.test(firstLine)) return 'shell';
  if (/^#!.*\b(?:python[0-9.]*|node|perl|ruby|php|deno|bun)\b/.test(firstLine)) return 'code';
  if (/\.(?:sh|bash|zsh|ksh|command)$/i.test(path)) return 'shell';
  if (/\.(?:py|js|mjs|cjs|ts|mts|cts|rb|pl|pm|php|lua)$/i.test(path)) return 'code';
  if (/\.(?:md|markdown|mdx|txt|rst)$/i.test(path) || !/\.[^/]+$/.test(path)) return 'markdown';
  return 'text';
}

/** Splits a shell script into complete commands (continuations, open quotes, heredocs) and classifies each. */
export function shellFindings(
  script: string,
  firstLine: number,
): { line: number; finding: CommandFinding }[] {
  const out: { line: number; finding: CommandFinding }[] = [];
  const lines = script.split('\n');
  let chunk: string[] = [];
  let chunkStart = 0;
  let heredocEnd: string | undefined;
  const state: ShellState = { downloaded: new Map() };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (chunk.length === 0) chunkStart = i;
    chunk.push(line);
    if (heredocEnd !== undefined) {
      if (line.replace(/^\t+/, '') === heredocEnd) heredocEnd = undefined;
      else continue;
    } else {
      const heredoc = /<<-?\s*['"]?([A-Za-z_][\w-]*)['"]?/.exec(line.replace(/<<</g, ''));
      if (heredoc) {
        heredocEnd = heredoc[1];
        continue;
      }
    }
    const text = chunk.join('\n');
    // An unclosed quote must not make every later line re-read the whole chunk: judge it at 64 lines.
    if (i < lines.length - 1 && chunk.length < 64 && !isComplete(text)) continue;
    for (const finding of classifyShell(text, 0, state)) out.push({ line: firstLine + chunkStart, finding });
    chunk = [];
  }
  if (chunk.length > 0)
    for (const finding of classifyShell(chunk.join('\n'), 0, state))
      out.push({ line: firstLine + chunkStart, finding });
  return out;
}

function isComplete(text: string): boolean {
  if (/(?:\\|\||&&|\|\|)\s*$/.test(text)) return false;
  let single = false;
  let double = false;
  let parens = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (single) {
      if (c === "'") single = false;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '#' && !double && (i === 0 || /\s/.test(text[i - 1]!))) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
      continue;
    }
    if (c === "'" && !double) single = true;
    else if (c === '"') double = !double;
    else if (c === '$' && text[i + 1] === '(') {
      parens++;
      i++;
    } else if (c === ')' && parens > 0) parens--;
  }
  return !single && !double && parens === 0;
}

/** Comments in scripts are read by the agent too: injection there counts like prose. */
function commentInjection(lines: string[]): LineFinding[] {
  const out: LineFinding[] = [];
  lines.forEach((line, index) => {
    const comment = /(?:^|\s)(?:#|\/\/)\s?(.*)$/.exec(line);
    if (comment && !line.startsWith('#!')) out.push(...injectionFindings(comment[1]!, index + 1));
  });
  return out;
}

const SHELL_FENCE = /^(?:|sh|bash|shell|zsh|console|shell-session|terminal|ksh|fish)$/i;
const CODE_FENCE = /^(?:py|python|python3|js|javascript|node|ts|typescript|rb|ruby|perl|pl|php)$/i;
/** A line before a code block that shows it is an example of what not to do. */
const BAD_EXAMPLE =
  /\b(?:never|don't|do not|avoid|must not|should not|dangerous|malicious|attack(?:er)?s?|red flags?|anti-pattern|bad example|example of an? (?:attack|malicious|dangerous)|flag(?:s|ged)? by|detect(?:s|ed)?|looks like this|what .{0,20} looks like|blocked)\b/i;
const RUN_CUE = /\b(?:run|execute|exec|paste|type|invoke|enter)\b/i;
const NEGATION = /\b(?:never|don't|do not|avoid|must not|should not|not)\b/i;

/** Markdown: fenced code is judged as code (unless shown as a bad example), prose for injection, inline code by context. */
function markdownFindings(text: string): { line: number; finding: CommandFinding; excerpt?: string }[] {
  const out: { line: number; finding: CommandFinding; excerpt?: string }[] = [];
  const lines = text.split('\n');
  const prose: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const fence = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]!);
    if (!fence) {
      prose.push(lines[i]!);
      i++;
      continue;
    }
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.trim().startsWith(fence[1]!)) end++;
    const body = lines.slice(start, end);
    const context = lines.slice(Math.max(0, i - 3), i).join(' ');
    const badExample = BAD_EXAMPLE.test(context);
    const language = fence[2] ?? '';
    let found: { line: number; finding: CommandFinding }[] = [];
    if (SHELL_FENCE.test(language)) {
      const script = body.map((l) => l.replace(/^\s*(?:\$|#|>|PS>)\s(?=\S)/, '')).join('\n');
      found = shellFindings(script, start + 1);
    } else if (CODE_FENCE.test(language)) {
      found = classifyCode(body.join('\n')).map((f) => ({ ...f, line: f.line + start }));
    }
    found.push(
      ...injectionFindings(body.join('\n'), start + 1).map((f) => ({ line: f.line, finding: f.finding })),
    );
    for (const f of found) {
      out.push(
        badExample
          ? {
              ...f,
              finding: {
                ...f.finding,
                severity: 'info',
                reason: `${f.finding.reason} (shown as an example of what not to do)`,
              },
            }
          : f,
      );
    }
    for (let k = i; k <= end && k < lines.length; k++) prose.push('');
    i = end + 1;
  }
  const proseText = prose.join('\n');
  out.push(...injectionFindings(proseText.replace(/<!--[\s\S]*?-->/g, (c) => c.replace(/[^\n]/g, ' '))));
  out.push(...hiddenCommentFindings(proseText));
  prose.forEach((line, index) => {
    for (const m of line.matchAll(/`([^`\n]+)`/g)) {
      const before = line.slice(0, m.index);
      const instructed = RUN_CUE.test(before) && !NEGATION.test(before) && !BAD_EXAMPLE.test(line);
      for (const finding of classifyShell(m[1]!)) {
        out.push({
          line: index + 1,
          finding: instructed
            ? finding
            : {
                ...finding,
                severity: lowerSeverity(finding.severity, 3),
                reason: `${finding.reason} (mentioned, not run)`,
              },
        });
      }
    }
  });
  return out;
}
