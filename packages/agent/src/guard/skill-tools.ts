/**
 * The agent's side of the guard: its settings, and the check that routes a file write into the
 * skills or memory folders through the scanner (the loop's save_skill, write_memory and write_file use it).
 */
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
  const clean = path.replace(/^\.\//, '');
  return clean.startsWith(`${folder.replace(/\/+$/, '')}/`);
}

/**
 * A `write_file` into the skills or memory folder passes the guard; undefined for any other path.
 * A write into a skill scans that file (the rest of the skill passed when it was saved).
 */
export async function guardedWrite(
  sandbox: SandboxBackend,
  path: string,
  content: string,
  settings: GuardSettings = {},
  signal?: AbortSignal,
): Promise<KeepOutcome | undefined> {
  const skillsDir = settings.skillsDir ?? 'skills';
  const memoryDir = settings.memoryDir ?? 'memory';
  const common = { ...settings, ...(signal ? { signal } : {}) };
  if (within(path, memoryDir)) return await saveMemoryInSandbox(sandbox, { path, content }, common);
  if (within(path, skillsDir)) {
    const rest = path.replace(/^\.\//, '').slice(skillsDir.replace(/\/+$/, '').length + 1);
    const [name, ...inner] = rest.split('/');
    if (!name || inner.length === 0) return undefined;
    return await guardedSkillFileWrite(sandbox, name, inner.join('/'), content, common, skillsDir);
  }
  return undefined;
}

async function guardedSkillFileWrite(
  sandbox: SandboxBackend,
  name: string,
  file: string,
  content: string,
  settings: GuardSettings & { signal?: AbortSignal },
  skillsDir: string,
): Promise<KeepOutcome> {
  // Scan the one file in a throwaway skill, then write only that file into place.
  const outcome = await saveSkillInSandbox(
    sandbox,
    { name, files: [{ path: file, content }] },
    { ...settings, skillsDir: `${settings.quarantineDir ?? '.quarantine'}/.staging` },
  );
  if (!outcome.kept) return outcome;
  await sandbox.exec(['rm', '-rf', '--', outcome.path], settings.signal ? { signal: settings.signal } : {});
  const target = `${skillsDir}/${name}/${file}`;
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
