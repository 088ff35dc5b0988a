/**
 * A small POSIX-shell tokenizer: enough structure (words, pipelines, redirects, substitutions,
 * heredocs) for the guard to judge what a command does, not what text it merely mentions.
 * It never executes or expands anything; `$VAR`, `~` and globs stay as written.
 */

export interface Redirect {
  /** `>`, `>>`, `<`, `>&`, `&>`, `<<`, `<<<`, ... */
  op: string;
  target: string;
  /** The body of a heredoc (`<<EOF`). */
  heredoc?: string;
}

export interface SimpleCommand {
  /** The words after leading `NAME=value` assignments, quotes removed. */
  words: string[];
  assignments: { name: string; value: string }[];
  redirects: Redirect[];
  /** Scripts found inside `$(...)`, backticks, `<(...)` and `>(...)` in this command's words. */
  substitutions: string[];
}

export interface Pipeline {
  commands: SimpleCommand[];
  /** Ended with `&`. */
  background: boolean;
}

export interface ParsedScript {
  pipelines: Pipeline[];
}

const OPERATORS = ['&&', '||', ';;', '|&', ';', '|', '&', '\n', '(', ')'];
const REDIRECT_OPS = ['<<<', '<<-', '&>>', '<<', '>>', '>&', '<&', '<>', '>|', '&>', '>', '<'];
const KEYWORDS = new Set([
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'do',
  'done',
  'while',
  'until',
  'case',
  'esac',
  'in',
  '{',
  '}',
  '!',
  'function',
]);

type Token =
  | { kind: 'word'; text: string; subs: string[] }
  | { kind: 'op'; text: string }
  | { kind: 'redirect'; op: string; fd: string };

/** Reads the balanced body of `$(`, `<(` or `>(` starting just after the open paren. */
function readBalanced(src: string, start: number): { body: string; end: number } {
  let depth = 1;
  let i = start;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = src.indexOf("'", i + 1);
      i = close < 0 ? src.length : close + 1;
      continue;
    }
    if (c === '"') {
      i = skipDoubleQuoted(src, i + 1);
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return { body: src.slice(start, i), end: i + 1 };
    }
    i++;
  }
  return { body: src.slice(start), end: src.length };
}

function skipDoubleQuoted(src: string, start: number): number {
  let i = start;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else if (c === '$' && src[i + 1] === '(') i = readBalanced(src, i + 2).end;
    else i++;
  }
  return src.length;
}

function tokenize(src: string): { tokens: Token[]; heredocs: Map<number, string> } {
  const tokens: Token[] = [];
  const heredocs = new Map<number, string>();
  const pendingHeredocs: { index: number; delimiter: string; stripTabs: boolean }[] = [];
  let i = 0;
  let word: string | undefined;
  let subs: string[] = [];
  const flush = () => {
    if (word !== undefined) tokens.push({ kind: 'word', text: word, subs });
    word = undefined;
    subs = [];
  };
  const append = (s: string) => {
    word = (word ?? '') + s;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\') {
      if (src[i + 1] === '\n') {
        i += 2;
        continue;
      }
      append(src[i + 1] ?? '');
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = src.indexOf("'", i + 1);
      const end = close < 0 ? src.length : close;
      append(src.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    if (c === '"') {
      append('');
      i++;
      while (i < src.length && src[i] !== '"') {
        const d = src[i]!;
        if (d === '\\' && i + 1 < src.length) {
          const next = src[i + 1]!;
          append('$`"\\\n'.includes(next) ? (next === '\n' ? '' : next) : `\\${next}`);
          i += 2;
        } else if (d === '$' && src[i + 1] === '(' && src[i + 2] !== '(') {
          const { body, end } = readBalanced(src, i + 2);
          subs.push(body);
          append(`$(${body})`);
          i = end;
        } else if (d === '`') {
          const close = src.indexOf('`', i + 1);
          const end = close < 0 ? src.length : close;
          subs.push(src.slice(i + 1, end));
          append(src.slice(i, end + 1));
          i = end + 1;
        } else {
          append(d);
          i++;
        }
      }
      i++;
      continue;
    }
    if (c === '$' && src[i + 1] === '(') {
      const arithmetic = src[i + 2] === '(';
      const { body, end } = readBalanced(src, i + 2);
      if (!arithmetic) subs.push(body);
      append(`$(${body})`);
      i = end;
      continue;
    }
    if (c === '`') {
      const close = src.indexOf('`', i + 1);
      const end = close < 0 ? src.length : close;
      subs.push(src.slice(i + 1, end));
      append(src.slice(i, end + 1));
      i = end + 1;
      continue;
    }
    if ((c === '<' || c === '>') && src[i + 1] === '(' && word === undefined) {
      const { body, end } = readBalanced(src, i + 2);
      subs.push(body);
      append(`${c}(${body})`);
      i = end;
      continue;
    }
    if (c === '#' && word === undefined) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      flush();
      i++;
      continue;
    }
    const redirect = REDIRECT_OPS.find((op) => src.startsWith(op, i));
    if (redirect) {
      // A word made only of digits right before a redirect is its file descriptor (`2>`).
      let fd = '';
      if (word !== undefined && /^\d+$/.test(word) && subs.length === 0) {
        fd = word;
        word = undefined;
      }
      flush();
      tokens.push({ kind: 'redirect', op: redirect, fd });
      i += redirect.length;
      if (redirect === '<<' || redirect === '<<-') {
        // The delimiter word follows; its body starts at the next newline.
        while (src[i] === ' ' || src[i] === '\t') i++;
        let delimiter = '';
        while (i < src.length && !/[\s;&|<>()]/.test(src[i]!)) {
          if (src[i] !== "'" && src[i] !== '"' && src[i] !== '\\') delimiter += src[i];
          i++;
        }
        tokens.push({ kind: 'word', text: delimiter, subs: [] });
        pendingHeredocs.push({ index: tokens.length - 2, delimiter, stripTabs: redirect === '<<-' });
      }
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op) {
      flush();
      tokens.push({ kind: 'op', text: op });
      i += op.length;
      if (op === '\n' && pendingHeredocs.length > 0) {
        for (const doc of pendingHeredocs.splice(0)) {
          const lines: string[] = [];
          while (i < src.length) {
            const nl = src.indexOf('\n', i);
            const lineEnd = nl < 0 ? src.length : nl;
            const line = src.slice(i, lineEnd);
            i = lineEnd + 1;
            if ((doc.stripTabs ? line.replace(/^\t+/, '') : line) === doc.delimiter) break;
            lines.push(line);
          }
          heredocs.set(doc.index, lines.join('\n'));
        }
      }
      continue;
    }
    append(c);
    i++;
  }
  flush();
  return { tokens, heredocs };
}

/** Parses shell text into pipelines of simple commands. Never throws: odd input yields odd words. */
export function parseShell(src: string): ParsedScript {
  const { tokens, heredocs } = tokenize(src);
  const pipelines: Pipeline[] = [];
  let commands: SimpleCommand[] = [];
  let current: SimpleCommand = newCommand();
  const endCommand = () => {
    if (current.words.length > 0 || current.redirects.length > 0 || current.assignments.length > 0) {
      commands.push(current);
    }
    current = newCommand();
  };
  const endPipeline = (background: boolean) => {
    endCommand();
    if (commands.length > 0) pipelines.push({ commands, background });
    commands = [];
  };
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (token.kind === 'op') {
      if (token.text === '|' || token.text === '|&') endCommand();
      else endPipeline(token.text === '&');
      continue;
    }
    if (token.kind === 'redirect') {
      const next = tokens[t + 1];
      const target = next?.kind === 'word' ? next.text : '';
      if (next?.kind === 'word') {
        current.substitutions.push(...next.subs);
        t++;
      }
      const heredoc = heredocs.get(t - 1);
      current.redirects.push({
        op: `${token.fd}${token.op}`,
        target,
        ...(heredoc === undefined ? {} : { heredoc }),
      });
      continue;
    }
    current.substitutions.push(...token.subs);
    if (current.words.length === 0) {
      const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(token.text);
      if (assignment) {
        current.assignments.push({ name: assignment[1]!, value: assignment[2]! });
        continue;
      }
      // `then rm ...`, `do curl ...`: the keyword is structure, the command follows it.
      if (KEYWORDS.has(token.text)) continue;
    }
    current.words.push(token.text);
  }
  endPipeline(false);
  return { pipelines };
}

function newCommand(): SimpleCommand {
  return { words: [], assignments: [], redirects: [], substitutions: [] };
}
