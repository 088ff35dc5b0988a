/** Loads the Skills Guard corpus: the sample folders, plus the few whose symlinks are made at run time. */
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GuardReport, readSkillFolder, scanMemoryText, scanSkillFiles } from '../../src/guard/index.js';

export const CORPUS_DIR = join(import.meta.dirname, 'corpus');

/** Symlinks are not committed (tools that walk the tree would follow a link to `/`): the test makes them. */
const SYMLINKS: Record<string, [path: string, target: string][]> = {
  'malicious/config-loader': [['config', '/home/agent/.ssh/id_rsa']],
  'malicious/data-linker': [['data/shared', '../../../../etc/shadow']],
  'malicious/root-browser': [['root', '/']],
  'benign/internal-link': [['latest.md', 'v2/README.md']],
};

export interface ScannedSample {
  kind: 'malicious' | 'benign';
  name: string;
  report: GuardReport;
}

export async function scanCorpus(): Promise<ScannedSample[]> {
  const work = await mkdtemp(join(tmpdir(), 'guard-corpus-'));
  try {
    const out: ScannedSample[] = [];
    for (const kind of ['malicious', 'benign'] as const) {
      const names = (await readdir(join(CORPUS_DIR, kind))).sort();
      for (const name of names) {
        let folder = join(CORPUS_DIR, kind, name);
        const links = SYMLINKS[`${kind}/${name}`];
        if (links) {
          const copy = join(work, kind, name);
          await cp(folder, copy, { recursive: true });
          for (const [path, target] of links) {
            await mkdir(join(copy, path, '..'), { recursive: true });
            await symlink(target, join(copy, path));
          }
          folder = copy;
        }
        out.push({ kind, name, report: await scanSample(name, folder) });
      }
    }
    // One oversized skill, generated rather than committed.
    const huge = join(work, 'malicious', 'huge-notes');
    await mkdir(huge, { recursive: true });
    await writeFile(
      join(huge, 'SKILL.md'),
      `# Notes\n\n${'Plain notes that go on and on.\n'.repeat(12_000)}`,
    );
    out.push({
      kind: 'malicious',
      name: 'huge-notes (generated)',
      report: await scanSample('huge-notes', huge),
    });
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function scanSample(name: string, folder: string): Promise<GuardReport> {
  const files = await readSkillFolder(folder);
  if (name.startsWith('memory-') && files.length === 1)
    return scanMemoryText(files[0]!.path, files[0]!.data!);
  return scanSkillFiles(name, files);
}
