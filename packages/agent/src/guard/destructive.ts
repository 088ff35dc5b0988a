/**
 * Which tool calls may destroy work, so the loop can take a checkpoint before them: commands that
 * delete, move over, truncate or overwrite files (judged on the parsed command, as approvals are),
 * and anything the approvals classifier files under "destructive".
 */
import { classifyShell, effectiveWords } from './command-rules.js';
import { parseShell, type SimpleCommand } from './shell-parse.js';

/** Programs that remove or replace files whatever their flags. */
const DELETING = new Set(['rm', 'rmdir', 'unlink', 'shred', 'truncate', 'mv', 'srm', 'wipe']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh']);
/** Redirects that replace a file's contents. */
const OVERWRITING = new Set(['>', '>|', '&>', '<>']);
/** Targets a redirect may overwrite without losing anything. */
const HARMLESS_TARGETS = new Set(['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty']);

function deletes(command: SimpleCommand): string | undefined {
  const { words } = effectiveWords(command.words);
  const name = words[0]?.replace(/^.*\//, '');
  if (name && DELETING.has(name)) return `${name} removes or replaces files`;
  const script = words.indexOf('-c');
  if (name && SHELLS.has(name) && script > 0 && words[script + 1] !== undefined)
    return destructiveCommand(words[script + 1]!);
  if (name === 'find' && words.includes('-delete')) return 'find -delete removes files';
  if (name === 'git' && words.includes('reset') && words.includes('--hard')) return 'git reset --hard';
  if (name === 'git' && words.includes('clean')) return 'git clean removes files';
  if (name === 'git' && words.includes('checkout') && words.includes('--'))
    return 'git checkout -- drops edits';
  if ((name === 'sed' || name === 'perl') && words.some((w) => /^-[a-zA-Z]*i/.test(w)))
    return `${name} -i edits files in place`;
  const redirect = command.redirects.find(
    (r) => OVERWRITING.has(r.op) && !HARMLESS_TARGETS.has(r.target) && !/^&?\d$/.test(r.target),
  );
  if (redirect) return `overwrites ${redirect.target}`;
  return undefined;
}

/** Why a shell command may destroy work, or undefined when it only adds or reads. */
export function destructiveCommand(command: string): string | undefined {
  const classified = classifyShell(command).find((f) => f.category === 'destructive');
  if (classified) return classified.reason;
  for (const pipeline of parseShell(command).pipelines)
    for (const command of pipeline.commands) {
      const reason = deletes(command);
      if (reason) return reason;
      for (const inner of command.substitutions) {
        const nested = destructiveCommand(inner);
        if (nested) return nested;
      }
    }
  return undefined;
}
