/**
 * Keeping a skill or memory file through the guard: what passes goes where the agent will load
 * it; what does not goes to a quarantine folder with its report (JSON and text), never into the
 * skills folder. Any failure while scanning counts as a dangerous verdict.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SandboxBackend } from '@agentbox/core';
import { InvalidArgumentError } from '@agentbox/core';
import { type Verdict, verdictOf } from './findings.js';
import { readSkillFolder } from './folder.js';
import { formatGuardReport } from './report.js';
import {
  type GuardLimits,
  type GuardReport,
  scanMemoryText,
  scannerError,
  scanSkillFiles,
} from './scanner.js';

export interface GuardPolicy {
  /** The verdict from which content is quarantined instead of kept (default `dangerous`). */
  blockAt?: Exclude<Verdict, 'safe'>;
  limits?: GuardLimits;
}

export interface KeepOutcome {
  kept: boolean;
  /** Where the content now is: its destination, or its quarantine folder. */
  path: string;
  report: GuardReport;
  /** The readable report, also handed to the model so it knows why. */
  summary: string;
}

const VERDICT_RANK: Record<Verdict, number> = { safe: 0, caution: 1, dangerous: 2 };

export function isBlocked(verdict: Verdict, blockAt: Exclude<Verdict, 'safe'> = 'dangerous'): boolean {
  return VERDICT_RANK[verdict] >= VERDICT_RANK[blockAt];
}

/** A report that says the scan itself failed: fail closed. */
export function failedReport(target: string, kind: 'skill' | 'memory', error: unknown): GuardReport {
  const findings = [scannerError('.', error)];
  return {
    target,
    kind,
    verdict: verdictOf(findings),
    findings,
    files: 0,
    bytes: 0,
    scannedAt: new Date().toISOString(),
  };
}

export function quarantineName(name: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return `${name.replace(/[^\w.-]+/g, '_')}-${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface KeepOnHostOptions extends GuardPolicy {
  /** A staged skill folder, or a memory file. */
  source: string;
  kind: 'skill' | 'memory';
  /** Final place: the skill's folder inside the skills folder, or the memory file's path. */
  destination: string;
  quarantineDir: string;
  /** The name shown in the report (default: the source path). */
  name?: string;
}

/** Scans a skill folder or memory file on the host and keeps or quarantines it. */
export async function keepOnHost(options: KeepOnHostOptions): Promise<KeepOutcome> {
  const name = options.name ?? options.source;
  // Scan a private copy and keep exactly that copy: the source can change after it was scanned.
  const incoming = `${options.destination}.incoming-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(options.destination), { recursive: true });
  let report: GuardReport;
  let copied = false;
  try {
    await cp(options.source, incoming, { recursive: true, verbatimSymlinks: true, errorOnExist: true });
    copied = true;
    const files = await readSkillFolder(incoming, options.limits);
    report =
      options.kind === 'memory' && files.length === 1
        ? scanMemoryText(name, files[0]!.data ?? new Uint8Array(), options.limits)
        : scanSkillFiles(name, files, { ...options.limits, kind: options.kind });
  } catch (error) {
    report = failedReport(name, options.kind, error);
  }
  const summary = formatGuardReport(report);
  if (!isBlocked(report.verdict, options.blockAt)) {
    await rm(options.destination, { recursive: true, force: true });
    await rename(incoming, options.destination);
    return { kept: true, path: options.destination, report, summary };
  }
  const folder = join(options.quarantineDir, quarantineName(options.name ?? 'content'));
  await mkdir(folder, { recursive: true });
  if (copied)
    await rename(incoming, join(folder, 'content')).catch(() =>
      rm(incoming, { recursive: true, force: true }),
    );
  await writeFile(join(folder, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(folder, 'report.txt'), summary);
  return { kept: false, path: folder, report, summary };
}

export interface SkillFileInput {
  /** Relative to the skill folder. */
  path: string;
  content: string;
}

export interface SaveInSandboxOptions extends GuardPolicy {
  /** Folder of kept skills in the sandbox (default `skills`). */
  skillsDir?: string;
  /** Folder of quarantined content in the sandbox (default `.quarantine`). */
  quarantineDir?: string;
  signal?: AbortSignal;
}

const SKILL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function checkRelativePath(path: string, what: string): void {
  const parts = path.split('/');
  if (
    path === '' ||
    path.startsWith('/') ||
    parts.some((p) => p === '..' || p === '') ||
    path.includes('\\') ||
    path.includes('\0')
  ) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(path)} must be a relative path inside the folder`,
      {
        operation: 'guard',
      },
    );
  }
}

/** Scans a skill given as files (a model's tool call) and writes it to the skills folder or to quarantine. */
export async function saveSkillInSandbox(
  sandbox: SandboxBackend,
  skill: { name: string; files: readonly SkillFileInput[] },
  options: SaveInSandboxOptions = {},
): Promise<KeepOutcome> {
  if (!SKILL_NAME.test(skill.name)) {
    throw new InvalidArgumentError(
      `skill name ${JSON.stringify(skill.name)} must be letters, digits, '.', '_' or '-'`,
      {
        operation: 'saveSkill',
      },
    );
  }
  if (skill.files.length === 0)
    throw new InvalidArgumentError('a skill needs at least one file', { operation: 'saveSkill' });
  for (const f of skill.files) checkRelativePath(f.path, 'skill file');
  const encoder = new TextEncoder();
  let report: GuardReport;
  try {
    const files = skill.files.map((f) => {
      const data = encoder.encode(f.content);
      return { path: f.path, data, size: data.byteLength };
    });
    report = scanSkillFiles(skill.name, files, { ...options.limits, kind: 'skill' });
  } catch (error) {
    report = failedReport(skill.name, 'skill', error);
  }
  const summary = formatGuardReport(report);
  const { signal } = options;
  if (!isBlocked(report.verdict, options.blockAt)) {
    const folder = `${options.skillsDir ?? 'skills'}/${skill.name}`;
    // A changed skill replaces the old one whole, so no stale file escapes the scan.
    await sandbox.exec(['rm', '-rf', '--', folder], { signal });
    for (const f of skill.files) await sandbox.writeFile(`${folder}/${f.path}`, f.content, { signal });
    return { kept: true, path: folder, report, summary };
  }
  const folder = `${options.quarantineDir ?? '.quarantine'}/${quarantineName(skill.name)}`;
  for (const f of skill.files) await sandbox.writeFile(`${folder}/content/${f.path}`, f.content, { signal });
  await sandbox.writeFile(`${folder}/report.json`, `${JSON.stringify(report, null, 2)}\n`, { signal });
  await sandbox.writeFile(`${folder}/report.txt`, summary, { signal });
  return { kept: false, path: folder, report, summary };
}

/** Scans a memory file's new contents and writes them, or quarantines them with the report. */
export async function saveMemoryInSandbox(
  sandbox: SandboxBackend,
  memory: { path: string; content: string },
  options: Omit<SaveInSandboxOptions, 'skillsDir'> = {},
): Promise<KeepOutcome> {
  checkRelativePath(memory.path, 'memory file');
  let report: GuardReport;
  try {
    report = scanMemoryText(memory.path, memory.content, options.limits);
  } catch (error) {
    report = failedReport(memory.path, 'memory', error);
  }
  const summary = formatGuardReport(report);
  const { signal } = options;
  if (!isBlocked(report.verdict, options.blockAt)) {
    await sandbox.writeFile(memory.path, memory.content, { signal });
    return { kept: true, path: memory.path, report, summary };
  }
  const folder = `${options.quarantineDir ?? '.quarantine'}/${quarantineName(memory.path.split('/').pop()!)}`;
  await sandbox.writeFile(`${folder}/content/${memory.path.split('/').pop()}`, memory.content, { signal });
  await sandbox.writeFile(`${folder}/report.json`, `${JSON.stringify(report, null, 2)}\n`, { signal });
  await sandbox.writeFile(`${folder}/report.txt`, summary, { signal });
  return { kept: false, path: folder, report, summary };
}
