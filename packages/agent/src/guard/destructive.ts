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

/** A step that may destroy work; with `overwrites`, only if one of those files already exists. */
export interface DestructiveStep {
  reason: string;
  /** Redirect targets (relative to the command's cwd): the step destroys nothing when none exists. */
  overwrites?: string[];
}

/** Targets whose existence a plain `test -e` can tell: no expansion, no change of directory first. */
const PLAIN_TARGET = /^[^$`*?[~{]+$/;

function deletes(command: SimpleCommand, targets: string[]): DestructiveStep | undefined {
  const { words } = effectiveWords(command.words);
  const name = words[0]?.replace(/^.*\//, '');
  const say = (reason: string) => ({ reason });
  if (name && DELETING.has(name)) return say(`${name} removes or replaces files`);
  const script = words.indexOf('-c');
  if (name && SHELLS.has(name) && script > 0 && words[script + 1] !== undefined)
    return inner(words[script + 1]!, targets);
  if (name === 'cd' || name === 'pushd') targets.push('');
  if (name === 'find' && words.includes('-delete')) return say('find -delete removes files');
  if (name === 'git' && words.includes('reset') && words.includes('--hard')) return say('git reset --hard');
  if (name === 'git' && words.includes('clean')) return say('git clean removes files');
  if (name === 'git' && words.includes('checkout') && words.includes('--'))
    return say('git checkout -- drops edits');
  if ((name === 'sed' || name === 'perl') && words.some((w) => /^-[a-zA-Z]*i/.test(w)))
    return say(`${name} -i edits files in place`);
  for (const r of command.redirects)
    if (OVERWRITING.has(r.op) && !HARMLESS_TARGETS.has(r.target) && !/^&?\d$/.test(r.target))
      targets.push(r.target);
  return undefined;
}

/** Scans a script; an unconditional reason wins, overwritten files are collected in `targets`. */
function inner(command: string, targets: string[]): DestructiveStep | undefined {
  const classified = classifyShell(command).find((f) => f.category === 'destructive');
  if (classified) return { reason: classified.reason };
  for (const pipeline of parseShell(command).pipelines)
    for (const simple of pipeline.commands) {
      const found = deletes(simple, targets) ?? firstOf(simple.substitutions, targets);
      if (found) return found;
    }
  return undefined;
}

function firstOf(scripts: readonly string[], targets: string[]): DestructiveStep | undefined {
  for (const script of scripts) {
    const found = inner(script, targets);
    if (found) return found;
  }
  return undefined;
}

/**
 * Why a shell command may destroy work, or undefined when it only adds or reads. A command whose
 * only risk is a `>` redirect names its targets: it destroys nothing if none of them exists yet.
 */
export function destructiveCommand(command: string): DestructiveStep | undefined {
  const targets: string[] = [];
  const found = inner(command, targets);
  if (found) return found;
  // An empty entry marks a cd: it matters only for the targets after it.
  const overwrites = targets.filter((t) => t !== '');
  if (overwrites.length === 0) return undefined;
  const reason = `overwrites ${overwrites.join(', ')}`;
  // After a cd, or with a target the shell expands, a plain existence check could look in the wrong place.
  if (overwrites.length < targets.length || !overwrites.every((t) => PLAIN_TARGET.test(t))) return { reason };
  return { reason, overwrites };
}
