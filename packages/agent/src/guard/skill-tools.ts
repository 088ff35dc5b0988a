/**
 * The agent's side of the guard: settings, the two tools that save skills and memory through the
 * scanner, and the check that routes a plain file write into the skills or memory folders through it too.
 */
import type { SandboxBackend } from '@agentbox/core';
import { z } from 'zod';
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

const saveSkillArgs = z.strictObject({
  name: z.string().min(1),
  files: z.array(z.strictObject({ path: z.string().min(1), content: z.string() })).min(1),
});
const writeMemoryArgs = z.strictObject({ path: z.string().min(1), content: z.string() });

/** Tool definitions with the same shape as the entries of `TOOLS`. */
export const GUARDED_TOOLS = {
  save_skill: {
    spec: {
      name: 'save_skill',
      description:
        'Save a skill (a folder with SKILL.md and any scripts) for later runs. The Skills Guard scans it first; ' +
        'a dangerous skill is quarantined with a report instead of saved.',
      parameters: {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'folder name: letters, digits, ".", "_" or "-"' },
          files: {
            type: 'array',
            items: {
              type: 'object',
              properties: { path: { type: 'string' }, content: { type: 'string' } },
              required: ['path', 'content'],
              additionalProperties: false,
            },
          },
        },
        required: ['name', 'files'],
        additionalProperties: false,
      },
    },
    args: saveSkillArgs,
    async run(
      sandbox: SandboxBackend,
      args: z.output<typeof saveSkillArgs>,
      settings: { guard?: GuardSettings },
      signal?: AbortSignal,
    ): Promise<string> {
      const outcome = await saveSkillInSandbox(sandbox, args, {
        ...settings.guard,
        ...(signal ? { signal } : {}),
      });
      return outcomeMessage(outcome);
    },
  },
  write_memory: {
    spec: {
      name: 'write_memory',
      description:
        'Write a memory file (markdown read back in later runs) under the memory folder. The Skills Guard scans it first.',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string' }, content: { type: 'string' } },
        required: ['path', 'content'],
        additionalProperties: false,
      },
    },
    args: writeMemoryArgs,
    async run(
      sandbox: SandboxBackend,
      args: z.output<typeof writeMemoryArgs>,
      settings: { guard?: GuardSettings },
      signal?: AbortSignal,
    ): Promise<string> {
      const memoryDir = settings.guard?.memoryDir ?? 'memory';
      const path = within(args.path, memoryDir) ? args.path : `${memoryDir}/${args.path}`;
      const outcome = await saveMemoryInSandbox(
        sandbox,
        { path, content: args.content },
        { ...settings.guard, ...(signal ? { signal } : {}) },
      );
      return outcomeMessage(outcome);
    },
  },
} as const;
