/**
 * The agent's side of the guard: its settings, and the check that routes a file write into the
 * skills or memory folders through the scanner (the loop's save_skill, write_memory and write_file use it).
 */
import { posix } from 'node:path';
import type { SandboxBackend } from '@agentbox/core';
import type { ApprovalSettings } from './approvals.js';
import { type GuardPolicy, type KeepOutcome, saveMemoryInSandbox, saveSkillInSandbox } from './keep.js';

export interface GuardSettings extends GuardPolicy {
  /** Folder of kept skills in the sandbox (default `skills`). */
  skillsDir?: string;
  /** Folder of memory files in the sandbox (default `memory`). */
  memoryDir?: string;
  /** Folder of quarantined content (default `.quarantine`). */
  quarantineDir?: string;
  /** Approvals for commands; without a hook, dangerous commands are denied. */
  approvals?: ApprovalSettings;
}

function within(path: string, folder: string): boolean {
  return path.startsWith(`${folder.replace(/^\.\//, '').replace(/\/+$/, '')}/`);
}

/** The path relative to the workspace, normalized (`./skills//a/../b` is `skills/b`). */
function workspacePath(sandbox: SandboxBackend, path: string): string {
  const normal = posix.normalize(path);
  const root = `${posix.normalize(sandbox.workdir).replace(/\/+$/, '')}/`;
  return normal.startsWith(root) ? normal.slice(root.length) : normal.replace(/^\.\//, '');
}

/** True when a write to this path goes through the guard (it lies in the skills or memory folder). */
export function isGuardedPath(sandbox: SandboxBackend, path: string, settings: GuardSettings = {}): boolean {
  const clean = workspacePath(sandbox, path);
  return within(clean, settings.skillsDir ?? 'skills') || within(clean, settings.memoryDir ?? 'memory');
}

/**
 * A `write_file` into the skills or memory folder passes the guard; undefined for any other path.
 * A write into a skill scans that file (the rest of the skill passed when it was saved); a file
 * straight in the skills folder is scanned as a skill of its own.
 */
export async function guardedWrite(
  sandbox: SandboxBackend,
  path: string,
  content: string,
  settings: GuardSettings = {},
  signal?: AbortSignal,
): Promise<KeepOutcome | undefined> {
  const skillsDir = (settings.skillsDir ?? 'skills').replace(/^\.\//, '').replace(/\/+$/, '');
  const memoryDir = settings.memoryDir ?? 'memory';
  const common = { ...settings, ...(signal ? { signal } : {}) };
  const clean = workspacePath(sandbox, path);
  if (within(clean, memoryDir)) return await saveMemoryInSandbox(sandbox, { path: clean, content }, common);
  if (within(clean, skillsDir)) {
    const [name, ...inner] = clean.slice(skillsDir.length + 1).split('/');
    if (!name) return undefined;
    return await guardedSkillFileWrite(sandbox, name, inner.join('/') || name, content, common, clean);
  }
  return undefined;
}

async function guardedSkillFileWrite(
  sandbox: SandboxBackend,
  name: string,
  file: string,
  content: string,
  settings: GuardSettings & { signal?: AbortSignal },
  target: string,
): Promise<KeepOutcome> {
  // Scan the one file in a throwaway skill, then write only that file into place.
  const outcome = await saveSkillInSandbox(
    sandbox,
    { name, files: [{ path: file, content }] },
    { ...settings, skillsDir: `${settings.quarantineDir ?? '.quarantine'}/.staging` },
  );
  if (!outcome.kept) return outcome;
  await sandbox.exec(['rm', '-rf', '--', outcome.path], settings.signal ? { signal: settings.signal } : {});
  await sandbox.writeFile(target, content, settings.signal ? { signal: settings.signal } : {});
  return { ...outcome, path: target };
}

/** What the model reads after a save: kept (with any caution) or quarantined, and why. */
export function outcomeMessage(outcome: KeepOutcome): string {
  if (outcome.kept && outcome.report.verdict === 'safe')
    return `saved to ${outcome.path} (Skills Guard: safe)`;
  if (outcome.kept) return `saved to ${outcome.path}, with warnings:\n${outcome.summary}`;
  return `not saved: the Skills Guard quarantined it in ${outcome.path}.\n${outcome.summary}`;
}
