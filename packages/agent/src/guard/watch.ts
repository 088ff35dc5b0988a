/**
 * The guard behind shell commands: a command can write a skill or a memory file too
 * (`echo ... > skills/x/SKILL.md`), so the skills and memory folders are fingerprinted before and
 * after each command, and whatever is new or changed is scanned where it lies. A skill or memory
 * file found dangerous is moved to quarantine with its report; the caller tells the model.
 */
import type { SandboxBackend } from '@agentbox/core';
import { failedReport, isBlocked, type KeepOutcome, quarantineName } from './keep.js';
import { formatGuardReport } from './report.js';
import {
  DEFAULT_GUARD_LIMITS,
  type GuardReport,
  type SkillFile,
  scanMemoryText,
  scanSkillFiles,
} from './scanner.js';
import type { GuardSettings } from './skill-tools.js';

/** Each file or symlink under the watched folders: path → fingerprint (checksum and size, or link target). */
export type FolderFingerprints = Map<string, string>;

// Each regular file by a checksum of its bytes and its size, with whichever tool the image has
// (busybox images lack cksum); with none, a print that differs every time: everything is rescanned.
// Symlinks by their target, never followed.
const FINGERPRINT_SCRIPT = `sum=
for tool in cksum md5sum sha256sum sha1sum; do
  if command -v "$tool" >/dev/null 2>&1; then sum=$tool; break; fi
done
for d in "$@"; do
  [ -d "$d" ] || continue
  find "$d" -type f | while IFS= read -r f; do
    if [ -n "$sum" ]; then s=$("$sum" < "$f"); s=\${s%% *}; else s="unknown-$$"; fi
    printf 'F %s %s %s\\n' "$s" "$(($(wc -c < "$f")))" "$f"
  done
  find "$d" -type l | while IFS= read -r f; do printf 'L %s %s\\n' "$(readlink "$f")" "$f"; done
done`;

function watchedFolders(settings: GuardSettings): { skills: string; memory: string } {
  const clean = (folder: string) => folder.replace(/^\.\//, '').replace(/\/+$/, '');
  return { skills: clean(settings.skillsDir ?? 'skills'), memory: clean(settings.memoryDir ?? 'memory') };
}

export async function fingerprintGuardedFolders(
  sandbox: SandboxBackend,
  settings: GuardSettings = {},
  signal?: AbortSignal,
): Promise<FolderFingerprints> {
  const { skills, memory } = watchedFolders(settings);
  const r = await sandbox.exec(['sh', '-c', FINGERPRINT_SCRIPT, 'sh', skills, memory], { signal });
  const prints: FolderFingerprints = new Map();
  for (const line of r.stdout.split('\n')) {
    // "F SUM SIZE PATH" for a file, "L TARGET PATH" for a symlink.
    const file = /^F (\S+) (\d+) (.+)$/.exec(line);
    if (file) prints.set(file[3]!, `${file[1]} ${file[2]}`);
    const link = /^L (.*) ((?:\S+\/)+\S+)$/.exec(line);
    if (link) prints.set(link[2]!, `link ${link[1]}`);
  }
  return prints;
}

/** The skill folders (or loose files in the skills folder) and memory files that are new or changed. */
function changedUnits(before: FolderFingerprints, after: FolderFingerprints, settings: GuardSettings) {
  const { skills, memory } = watchedFolders(settings);
  const units = new Map<string, 'skill' | 'memory'>();
  for (const [path, print] of after) {
    if (before.get(path) === print) continue;
    if (path.startsWith(`${memory}/`)) units.set(path, 'memory');
    else if (path.startsWith(`${skills}/`)) {
      const name = path.slice(skills.length + 1).split('/')[0]!;
      units.set(`${skills}/${name}`, 'skill');
    }
  }
  return units;
}

async function readForScan(
  sandbox: SandboxBackend,
  path: string,
  print: string,
  maxFileBytes: number,
  signal: AbortSignal | undefined,
): Promise<SkillFile> {
  if (print.startsWith('link ')) return { path, size: 0, symlinkTarget: print.slice(5) };
  const size = Number(print.split(' ')[1]);
  // An oversized file is not read: its size alone makes the scanner refuse it.
  if (size > maxFileBytes) return { path, size, data: new Uint8Array(0) };
  const data = await sandbox.readFile(path, { maxBytes: maxFileBytes, signal });
  return { path, size: data.byteLength, data };
}

async function scanUnit(
  sandbox: SandboxBackend,
  unit: string,
  kind: 'skill' | 'memory',
  after: FolderFingerprints,
  settings: GuardSettings,
  signal: AbortSignal | undefined,
): Promise<GuardReport> {
  const maxFileBytes = settings.limits?.maxFileBytes ?? DEFAULT_GUARD_LIMITS.maxFileBytes;
  const name = unit.split('/').pop()!;
  try {
    const files: SkillFile[] = [];
    for (const [path, print] of after) {
      if (path !== unit && !path.startsWith(`${unit}/`)) continue;
      const file = await readForScan(sandbox, path, print, maxFileBytes, signal);
      files.push({ ...file, path: path === unit ? name : path.slice(unit.length + 1) });
    }
    if (kind === 'memory') return scanMemoryText(unit, files[0]?.data ?? new Uint8Array(0), settings.limits);
    return scanSkillFiles(name, files, { ...settings.limits, kind });
  } catch (error) {
    if (signal?.aborted) throw error;
    return failedReport(kind === 'memory' ? unit : name, kind, error);
  }
}

/**
 * Scans what changed between two fingerprints and quarantines each dangerous skill (the whole
 * folder) or memory file. Returns one outcome per changed unit that is blocked or carries warnings.
 */
export async function reviewFolderChanges(
  sandbox: SandboxBackend,
  before: FolderFingerprints,
  after: FolderFingerprints,
  settings: GuardSettings = {},
  signal?: AbortSignal,
): Promise<KeepOutcome[]> {
  const outcomes: KeepOutcome[] = [];
  for (const [unit, kind] of changedUnits(before, after, settings)) {
    const report = await scanUnit(sandbox, unit, kind, after, settings, signal);
    const summary = formatGuardReport(report);
    if (!isBlocked(report.verdict, settings.blockAt)) {
      if (report.verdict !== 'safe') outcomes.push({ kept: true, path: unit, report, summary });
      continue;
    }
    const folder = `${settings.quarantineDir ?? '.quarantine'}/${quarantineName(unit.split('/').pop()!)}`;
    await sandbox.exec(['mkdir', '-p', '--', folder], { signal });
    await sandbox.exec(['mv', '--', unit, `${folder}/content`], { signal });
    await sandbox.writeFile(`${folder}/report.json`, `${JSON.stringify(report, null, 2)}\n`, { signal });
    await sandbox.writeFile(`${folder}/report.txt`, summary, { signal });
    outcomes.push({ kept: false, path: folder, report, summary });
  }
  return outcomes;
}

/** Each sandbox's folders as its last watched command left them. */
const lastSeen = new WeakMap<SandboxBackend, FolderFingerprints>();

/** The outcomes of one watched command: what it wrote, and what changed before it ran. */
export interface WatchedChanges {
  /** Changed since the last watched command ended: by a process an earlier command left running. */
  between: KeepOutcome[];
  /** Changed while this command ran. */
  during: KeepOutcome[];
}

/**
 * Watch one command's writes into the skills and memory folders. What changed there since the
 * last watched command of this sandbox ended (a process left running in the background) is
 * reviewed before this one runs; `review()`, called once it ends, reviews what it changed.
 */
export async function watchCommand(
  sandbox: SandboxBackend,
  settings: GuardSettings = {},
  signal?: AbortSignal,
): Promise<{ review(): Promise<WatchedChanges> }> {
  const fingerprint = () => fingerprintGuardedFolders(sandbox, settings, signal);
  let before = await fingerprint();
  const earlier = lastSeen.get(sandbox);
  const between = earlier ? await reviewFolderChanges(sandbox, earlier, before, settings, signal) : [];
  if (between.some((o) => !o.kept)) before = await fingerprint();
  return {
    async review() {
      const after = await fingerprint();
      const during = await reviewFolderChanges(sandbox, before, after, settings, signal);
      lastSeen.set(sandbox, during.some((o) => !o.kept) ? await fingerprint() : after);
      return { between, during };
    },
  };
}

/** What the model reads after a command whose writes into the skills or memory folders were scanned. */
export function folderChangeMessage(outcomes: readonly KeepOutcome[], who = 'this command'): string {
  return outcomes
    .map((o) =>
      o.kept
        ? `Skills Guard: ${o.path} was changed by ${who} and kept, with warnings:\n${o.summary}`
        : `Skills Guard: ${who} wrote ${o.report.kind === 'memory' ? 'the memory file' : 'the skill'} ` +
          `"${o.report.target}", which is ${o.report.verdict.toUpperCase()}; it was moved to quarantine in ${o.path}.\n${o.summary}`,
    )
    .join('\n');
}
