/**
 * Full-screen programs (editors, terminal UIs) in a shell line. `agentbox shell` gives commands no
 * terminal, and without one these hang (vim waits forever on a pipe) or fail; the shell refuses
 * them up front with a message instead.
 */

/** Programs that need a terminal to draw on, by name. */
const FULL_SCREEN = new Set([
  'vi',
  'vim',
  'view',
  'vimdiff',
  'nvim',
  'nano',
  'pico',
  'emacs',
  'joe',
  'micro',
  'mcedit',
  'mc',
  'htop',
  'btop',
  'ncdu',
  'tmux',
  'screen',
]);

/** Arguments with which those programs work without a terminal (batch modes, version, help). */
const BATCH_ARGS = new Set([
  '-e',
  '-es',
  '-E',
  '-Es',
  '--batch',
  '-batch',
  '--version',
  '-v',
  '--help',
  '-h',
  'ls',
]);

/** Words that run the command after them (after their own options or VAR=value words). */
const WRAPPERS = new Set(['exec', 'command', 'env', 'sudo', 'nohup', 'time', 'nice']);

/** The first full-screen program `line` would start, or undefined. */
export function fullScreenProgram(line: string): string | undefined {
  for (const words of simpleCommands(line)) {
    let i = 0;
    let wrapped = false;
    // Skip VAR=value words, and wrappers with their options: `env A=1 nice -n 5 vim` starts vim.
    for (; i < words.length; i++) {
      const w = words[i]!;
      if (WRAPPERS.has(w)) wrapped = true;
      else if (!(isAssignment(w) || (wrapped && w.startsWith('-')) || (wrapped && /^\d+$/.test(w)))) break;
    }
    const program = words[i]?.split('/').at(-1);
    if (program === undefined || !FULL_SCREEN.has(program)) continue;
    if (words.slice(i + 1).some((arg) => BATCH_ARGS.has(arg))) continue;
    return program;
  }
  return undefined;
}

function isAssignment(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(word);
}

/** The words of each simple command in `line`: split on unquoted ; & | ( ) and newlines. */
function simpleCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const close = line.indexOf(c, i + 1);
      const end = close === -1 ? line.length : close;
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '');
      i++;
    } else if (';&|()\n'.includes(c)) endCommand();
    else if (c === ' ' || c === '\t') endWord();
    else word = (word ?? '') + c;
  }
  endCommand();
  return commands;
}
