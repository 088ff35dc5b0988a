/**
 * The dangerous-command classifier. It judges the parsed command — the program that really runs,
 * its flags and targets, the stages of a pipeline, redirects and substitutions — so that
 * `echo "rm -rf /"` is harmless and `sudo rm -rf ~/` is not.
 */
import { classifyCode } from './code-rules.js';
import type { CommandFinding, Severity } from './findings.js';
import {
  isBlockDevice,
  isBroadPath,
  isDotEnv,
  isHomePath,
  isMountedSecret,
  isPersistencePath,
  isSecretPath,
  isSuspiciousDestination,
  SECRET_ENV_VAR,
} from './paths.js';
import { type Pipeline, parseShell, type SimpleCommand } from './shell-parse.js';

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'fish', 'busybox-sh']);
const INTERPRETERS = new Set([
  ...SHELLS,
  'python',
  'python2',
  'python3',
  'perl',
  'ruby',
  'node',
  'nodejs',
  'php',
  'lua',
  'deno',
  'bun',
  'source',
  '.',
]);
const NETWORK = new Set([
  'curl',
  'wget',
  'nc',
  'ncat',
  'netcat',
  'socat',
  'telnet',
  'scp',
  'sftp',
  'rsync',
  'ssh',
  'ftp',
  'tftp',
  'openssl',
  'dig',
  'nslookup',
  'host',
  'http',
  'https',
  'xh',
  'mail',
  'sendmail',
  'mutt',
  'aws',
  'gsutil',
  'rclone',
]);
/** Commands that name a secret file without reading its contents to anyone. */
const NON_READERS = new Set([
  'ls',
  'stat',
  'test',
  '[',
  '[[',
  'chmod',
  'chown',
  'mkdir',
  'touch',
  'ssh',
  'ssh-add',
  'ssh-keygen',
  'file',
  'rm',
  'echo',
  'printf',
  'wc',
  'export',
  'git',
  'realpath',
  'dirname',
  'basename',
]);
/** Programs that run the rest of their arguments as a command. */
const WRAPPERS: Record<string, { valueFlags: string[] }> = {
  sudo: { valueFlags: ['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U'] },
  doas: { valueFlags: ['-u', '-C'] },
  env: { valueFlags: ['-u', '-C', '-S'] },
  nohup: { valueFlags: [] },
  nice: { valueFlags: ['-n'] },
  ionice: { valueFlags: ['-c', '-n', '-p'] },
  timeout: { valueFlags: ['-s', '-k', '--signal', '--kill-after'] },
  time: { valueFlags: ['-f', '-o'] },
  command: { valueFlags: [] },
  builtin: { valueFlags: [] },
  exec: { valueFlags: ['-a'] },
  setsid: { valueFlags: [] },
  stdbuf: { valueFlags: ['-i', '-o', '-e'] },
  xargs: { valueFlags: ['-I', '-n', '-P', '-L', '-d', '-E', '-s', '-a'] },
  watch: { valueFlags: ['-n', '-d'] },
  chronic: { valueFlags: [] },
  unbuffer: { valueFlags: [] },
  torsocks: { valueFlags: [] },
  proxychains: { valueFlags: ['-f'] },
  proxychains4: { valueFlags: ['-f'] },
};

const MAX_DEPTH = 4;

export function baseName(word: string): string {
  const stripped = word.replace(/^\\/, '');
  const slash = stripped.lastIndexOf('/');
  return slash >= 0 && !stripped.endsWith('/') ? stripped.slice(slash + 1) : stripped;
}

/** Drops wrappers (`sudo`, `env A=1`, `timeout 5`, `xargs -n1`, `busybox`) to reach the program that runs. */
export function effectiveWords(words: readonly string[]): { words: string[]; via: string[] } {
  let rest = [...words];
  const via: string[] = [];
  for (let guard = 0; guard < 8 && rest.length > 0; guard++) {
    const name = baseName(rest[0]!);
    if (name === 'busybox' && rest.length > 1) {
      via.push(name);
      rest = rest.slice(1);
      continue;
    }
    const wrapper = WRAPPERS[name];
    if (!wrapper) break;
    via.push(name);
    let i = 1;
    while (i < rest.length) {
      const w = rest[i]!;
      if (w === '--') {
        i++;
        break;
      }
      if (name === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
        i++;
        continue;
      }
      if (!w.startsWith('-')) break;
      i += wrapper.valueFlags.includes(w) ? 2 : 1;
    }
    // `timeout 10 cmd`: the duration comes first.
    if (name === 'timeout' && /^\d/.test(rest[i] ?? '')) i++;
    if (name === 'nice' && /^-?\d+$/.test(rest[i] ?? '')) i++;
    // `env` alone prints the environment: a wrapper with nothing to run is the command itself.
    if (i >= rest.length) {
      via.pop();
      break;
    }
    rest = rest.slice(i);
  }
  return { words: rest, via };
}

function find(
  rule: string,
  category: CommandFinding['category'],
  severity: Severity,
  reason: string,
): CommandFinding {
  return { rule, category, severity, reason };
}

function optionArgs(words: readonly string[]): { flags: Set<string>; args: string[] } {
  const flags = new Set<string>();
  const args: string[] = [];
  let endOfOptions = false;
  for (const w of words) {
    if (!endOfOptions && w === '--') endOfOptions = true;
    else if (!endOfOptions && /^--[a-z]/.test(w)) flags.add(w.replace(/=.*$/, ''));
    else if (!endOfOptions && /^-[A-Za-z]+$/.test(w)) for (const ch of w.slice(1)) flags.add(`-${ch}`);
    else args.push(w);
  }
  return { flags, args };
}

/** Everything the guard knows about one shell text. */
/** Carries what earlier commands of the same script did (files downloaded), across the chunks of a file. */
export interface ShellState {
  downloaded: Map<string, string>;
}

/**
 * Results for texts already judged. Rules look at a substitution's text several times (what it reads,
 * whether it leaks); this keeps that linear. Pure function results only, bounded, so it never grows.
 */
const judged = new Map<string, CommandFinding[]>();

export function classifyShell(script: string, depth = 0, state?: ShellState): CommandFinding[] {
  if (depth > MAX_DEPTH) {
    // Deeper nesting than any real script uses is itself a way to hide: fail closed.
    return [
      find('nesting-too-deep', 'obfuscation', 'high', 'command substitutions nested too deep to judge'),
    ];
  }
  if (state) return classifyShellUncached(script, depth, state);
  const key = `${depth}\0${script}`;
  const cached = judged.get(key);
  if (cached) return cached;
  const result = classifyShellUncached(script, depth);
  if (judged.size >= 4096) judged.clear();
  judged.set(key, result);
  return result;
}

function classifyShellUncached(script: string, depth: number, state?: ShellState): CommandFinding[] {
  const findings: CommandFinding[] = [];
  if (/(\b\w+|:)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&/.test(script)) {
    findings.push(
      find('fork-bomb', 'destructive', 'critical', 'a fork bomb: a function that pipes into itself'),
    );
  }
  const parsed = parseShell(script);
  const downloaded = state?.downloaded ?? new Map<string, string>();
  for (const pipeline of parsed.pipelines) {
    const filtered = filteredEnvDump(pipeline);
    for (const command of pipeline.commands) {
      for (const f of classifyCommand(command, depth)) {
        findings.push(
          filtered && f.rule === 'env-dump'
            ? { ...f, severity: 'info', reason: `${f.reason}, filtered to names that are not secrets` }
            : f,
        );
      }
      trackDownloads(command, downloaded, findings);
    }
    findings.push(...classifyPipeline(pipeline, depth));
  }
  return findings;
}

/** `env | grep -i proxy`: the environment goes only through a filter for a harmless name. */
function filteredEnvDump(pipeline: Pipeline): boolean {
  if (pipeline.commands.length !== 2) return false;
  const [first, second] = pipeline.commands.map((c) => effectiveWords(c.words).words);
  if (!isEnvDump(baseName(first![0] ?? ''), first!)) return false;
  if (!['grep', 'egrep', 'rg'].includes(baseName(second![0] ?? ''))) return false;
  const pattern = second!.slice(1).filter((w) => !w.startsWith('-'));
  return pattern.length === 1 && !/key|token|secret|pass|cred|auth|session|cookie|\.|\*/i.test(pattern[0]!);
}

function classifyPipeline(pipeline: Pipeline, depth: number): CommandFinding[] {
  const findings: CommandFinding[] = [];
  const stages = pipeline.commands.map((c) => ({ command: c, words: effectiveWords(c.words).words }));
  // Each stage's secrets are worked out once, and only when a later stage talks to the network.
  const sensitiveCache = new Map<number, string | undefined>();
  const sensitiveAt = (j: number) => {
    if (!sensitiveCache.has(j))
      sensitiveCache.set(j, sensitiveSource(stages[j]!.command, stages[j]!.words, depth));
    return sensitiveCache.get(j);
  };
  for (let i = 1; i < stages.length; i++) {
    const sink = stages[i]!;
    const sinkName = baseName(sink.words[0] ?? '');
    const sinkReadsStdin =
      INTERPRETERS.has(sinkName) &&
      !sink.words.slice(1).some((w) => !w.startsWith('-') && !/^(?:-|\/dev\/stdin)$/.test(w)) &&
      sinkName !== 'source' &&
      sinkName !== '.';
    for (let j = 0; j < i; j++) {
      const source = stages[j]!;
      const sourceName = baseName(source.words[0] ?? '');
      if (sinkReadsStdin && isDownload(sourceName, source.words)) {
        const target =
          source.words.find((w) => /^[a-z]+:\/\//i.test(w) || /\.\w+\//.test(w)) ?? 'the network';
        findings.push(
          find(
            'download-to-interpreter',
            'remote-code',
            isSuspiciousDestination(target) ? 'critical' : 'high',
            `runs code downloaded from ${target} without looking at it (${sourceName} | ${sinkName})`,
          ),
        );
      }
      if (sinkReadsStdin && isDecoder(sourceName, source.words)) {
        findings.push(
          find(
            'decode-to-interpreter',
            'obfuscation',
            'critical',
            `decodes a hidden payload and runs it (${sourceName} | ${sinkName})`,
          ),
        );
      }
      if (sinkName === 'crontab' || !(NETWORK.has(sinkName) || hasDevTcp(sink.command))) continue;
      const sensitive = sensitiveAt(j);
      if (sensitive) {
        findings.push(
          find(
            'pipe-secrets-to-network',
            'exfiltration',
            'critical',
            `sends ${sensitive} to the network (${sourceName} | ${sinkName})`,
          ),
        );
      }
    }
    if (SHELLS.has(sinkName) || sinkName === 'sh') {
      const shellInteractive = sink.words.includes('-i');
      const hasNetworkStage = stages.some((s) =>
        ['nc', 'ncat', 'netcat', 'telnet', 'openssl', 'socat'].includes(baseName(s.words[0] ?? '')),
      );
      if (hasNetworkStage && (shellInteractive || stages.length >= 3)) {
        findings.push(
          find(
            'pipeline-reverse-shell',
            'reverse-shell',
            'critical',
            'wires a shell to a network connection (reverse shell)',
          ),
        );
      }
    }
  }
  return findings;
}

function isDownload(name: string, words: readonly string[]): boolean {
  if (name === 'curl') return !words.some((w) => w === '-o' || w === '-O' || w.startsWith('--output'));
  if (name === 'wget')
    return (
      words.some((w) => /^-[a-zA-Z]*O-?$/.test(w) || w === '-O-' || w === '--output-document=-') &&
      words.some((w) => w === '-' || /O-$/.test(w))
    );
  return name === 'fetch' || name === 'http' || name === 'xh';
}

function isDecoder(name: string, words: readonly string[]): boolean {
  const flags = words.slice(1);
  if (name === 'base64' || name === 'base32' || name === 'basenc')
    return flags.some((w) => /^-[a-zA-Z]*[dD]/.test(w) || w === '--decode');
  if (name === 'openssl') return flags.some((w) => w === '-d' || w === 'base64' || w === '-base64');
  if (name === 'xxd') return flags.some((w) => /^-[a-z]*r/.test(w));
  if (['uudecode', 'gunzip', 'zcat', 'bunzip2', 'xz', 'unxz', 'rev', 'zstdcat'].includes(name)) return true;
  if (name === 'gzip') return flags.some((w) => /^-[a-z]*d/.test(w));
  if (name === 'tr') return words.join(' ').includes('N-ZA-M') || words.join(' ').includes('n-za-m');
  if (name === 'printf' || name === 'echo') return words.some((w) => /\\x[0-9a-fA-F]{2}|\\[0-7]{3}/.test(w));
  return false;
}

function hasDevTcp(command: SimpleCommand): boolean {
  return command.redirects.some((r) => /^\/dev\/(?:tcp|udp)\//.test(r.target));
}

/** When a pipeline stage emits secrets, the environment or a whole home folder: a short description. */
function sensitiveSource(
  command: SimpleCommand,
  words: readonly string[],
  depth: number,
): string | undefined {
  const name = baseName(words[0] ?? '');
  if (isEnvDump(name, words)) return 'the whole environment';
  if (name === 'history') return 'the shell history';
  const reads = [
    ...words.slice(1),
    ...command.redirects.filter((r) => r.op.endsWith('<')).map((r) => r.target),
  ];
  const secret = reads.find((w) => isSecretPath(w) || isMountedSecret(w) || isDotEnv(w));
  if (secret && !NON_READERS.has(name)) return secret;
  if (['tar', 'zip', '7z', 'cat', 'base64', 'gzip', 'xxd', 'find', 'cpio'].includes(name)) {
    const broad = words.slice(1).find((w) => isHomePath(w) || isBroadPath(w) || w === '/etc');
    if (broad && !(broad === '.' && name !== 'find')) return broad;
  }
  if (credentials(name, words.slice(1), optionArgs(words.slice(1)).args).some((f) => f.severity !== 'info'))
    return `secrets printed by ${name}`;
  if (command.substitutions.some((s) => leaksSecrets(s, depth))) return 'secrets read by a substitution';
  return undefined;
}

function isEnvDump(name: string, words: readonly string[]): boolean {
  if ((name === 'env' || name === 'printenv') && words.length === 1) return true;
  if (name === 'env' && words.slice(1).every((w) => w.startsWith('-'))) return true;
  if (name === 'export' && words[1] === '-p') return true;
  if ((name === 'set' && words.length === 1) || (name === 'declare' && /^-[px]+$/.test(words[1] ?? '')))
    return true;
  return false;
}

/** Marks a file written by a decoder rather than downloaded. */
const DECODED = '\0decoded';

function trackDownloads(
  command: SimpleCommand,
  downloaded: Map<string, string>,
  findings: CommandFinding[],
): void {
  const words = effectiveWords(command.words).words;
  const name = baseName(words[0] ?? '');
  if (name === 'curl' || name === 'wget') {
    const flag = name === 'curl' ? ['-o', '--output'] : ['-O', '--output-document'];
    const i = words.findIndex((w) => flag.includes(w));
    const url = words.find((w) => /^[a-z]+:\/\//i.test(w)) ?? '';
    if (i > 0 && words[i + 1]) downloaded.set(words[i + 1]!, url);
    return;
  }
  if (isDecoder(name, words)) {
    const out = command.redirects.find((r) => /^\d?>>?$|^>\|$/.test(r.op));
    if (out) downloaded.set(out.target, DECODED);
    return;
  }
  const run =
    name === 'chmod' ? undefined : words.find((w, k) => downloaded.has(w) && (k === 0 || SHELLS.has(name)));
  if (run !== undefined) {
    const url = downloaded.get(run) ?? '';
    if (url === DECODED) {
      findings.push(
        find(
          'decode-then-run',
          'obfuscation',
          'critical',
          `runs ${run}, which it just decoded from a hidden payload`,
        ),
      );
      return;
    }
    const hidden = /^\/(?:tmp|dev\/shm|var\/tmp)\/|\/\.[^/]+$/.test(run);
    findings.push(
      find(
        'download-then-run',
        'remote-code',
        hidden || isSuspiciousDestination(url) ? 'high' : 'medium',
        `runs ${run}, which it just downloaded from ${url || 'the network'}`,
      ),
    );
  }
}

function classifyCommand(command: SimpleCommand, depth: number): CommandFinding[] {
  const findings: CommandFinding[] = [];
  const { words, via } = effectiveWords(command.words);
  const name = baseName(words[0] ?? '');
  const args = words.slice(1);
  const { flags, args: operands } = optionArgs(args);

  for (const sub of command.substitutions) findings.push(...classifyShell(sub, depth + 1));
  findings.push(...classifyRedirects(command, name, depth));
  if (words.length === 0) return findings;

  // Commands that run a string as a script: judge the string itself.
  if (SHELLS.has(name) || name === 'su') {
    const c = args.indexOf('-c');
    if (c >= 0 && args[c + 1] !== undefined) findings.push(...classifyShell(args[c + 1]!, depth + 1));
    const heredoc = command.redirects.find((r) => r.heredoc !== undefined && r.op.includes('<<'));
    if (heredoc?.heredoc) findings.push(...classifyShell(heredoc.heredoc, depth + 1));
    const herestring = command.redirects.find((r) => r.op === '<<<');
    if (herestring) findings.push(...classifyShell(herestring.target, depth + 1));
    if (c >= 0 && command.substitutions.some((s) => decodesOrDownloads(s))) {
      findings.push(
        find(
          'shell-runs-fetched-text',
          'obfuscation',
          'critical',
          `${name} -c runs text that is decoded or downloaded`,
        ),
      );
    }
    if (words.some((w) => /^<\(/.test(w)) && command.substitutions.some((s) => decodesOrDownloads(s))) {
      findings.push(
        find('shell-process-substitution', 'remote-code', 'high', `${name} runs a downloaded script`),
      );
    }
  }
  if (name === 'source' || name === '.') {
    if (command.substitutions.some((s) => decodesOrDownloads(s)))
      findings.push(
        find('source-fetched', 'remote-code', 'high', 'sources a script fetched from the network'),
      );
  }
  if (name === 'eval') {
    findings.push(...classifyShell(args.join(' '), depth + 1));
    if (
      command.substitutions.some((s) => decodesOrDownloads(s)) ||
      args.some((a) => /\\x[0-9a-f]{2}/i.test(a))
    ) {
      findings.push(
        find('eval-decoded', 'obfuscation', 'critical', 'evaluates text that is decoded or downloaded'),
      );
    }
  }
  if (/^(?:python[0-9.]*|perl|ruby|node|nodejs|php|deno|bun)$/.test(name)) {
    const inline = args.findIndex((a) => ['-c', '-e', '-r', '--eval', '-E'].includes(a));
    if (inline >= 0 && args[inline + 1])
      findings.push(...classifyCode(args[inline + 1]!).map((f) => f.finding));
    const heredoc = command.redirects.find((r) => r.heredoc !== undefined);
    if (heredoc?.heredoc) findings.push(...classifyCode(heredoc.heredoc).map((f) => f.finding));
  }
  if (name === 'ssh') {
    const remote = sshRemoteCommand(args);
    if (remote) findings.push(...classifyShell(remote, depth + 1));
  }
  if (name === 'find') findings.push(...classifyFind(args, depth));
  if (
    via.includes('xargs') &&
    name === 'rm' &&
    (flags.has('-r') || flags.has('-R') || flags.has('--recursive'))
  ) {
    findings.push(
      find(
        'xargs-recursive-delete',
        'destructive',
        'medium',
        'deletes recursively whatever the previous stage lists',
      ),
    );
  }

  findings.push(...destructive(name, args, flags, operands));
  findings.push(...persistence(name, args, flags, operands, command));
  findings.push(...credentials(name, args, operands));
  findings.push(...network(name, args, command, depth));
  findings.push(...encodedLiterals(words));
  return findings;
}

function decodesOrDownloads(script: string): boolean {
  return parseShell(script).pipelines.some((p) =>
    p.commands.some((c) => {
      const w = effectiveWords(c.words).words;
      const n = baseName(w[0] ?? '');
      return isDecoder(n, w) || n === 'curl' || n === 'wget';
    }),
  );
}

function sshRemoteCommand(args: readonly string[]): string | undefined {
  const valueFlags = new Set([
    '-p',
    '-i',
    '-l',
    '-o',
    '-F',
    '-J',
    '-L',
    '-R',
    '-D',
    '-W',
    '-b',
    '-c',
    '-E',
    '-m',
    '-S',
  ]);
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-')) i += valueFlags.has(args[i]!) ? 2 : 1;
  const rest = args.slice(i + 1);
  return rest.length > 0 ? rest.join(' ') : undefined;
}

function classifyFind(args: readonly string[], depth: number): CommandFinding[] {
  const roots = args.slice(
    0,
    Math.max(
      0,
      args.findIndex((a) => a.startsWith('-') || a === '(' || a === '!'),
    ),
  );
  const broad = roots.find((r) => isBroadPath(r) && r !== '.');
  const execAt = args.findIndex((a) => a === '-exec' || a === '-execdir' || a === '-ok');
  const execCommand =
    execAt >= 0
      ? args.slice(
          execAt + 1,
          args.findIndex((a, k) => k > execAt && (a === ';' || a === '+')),
        )
      : [];
  const deletes =
    args.includes('-delete') ||
    baseName(execCommand[0] ?? '') === 'rm' ||
    baseName(execCommand[0] ?? '') === 'shred';
  const findings: CommandFinding[] = [];
  if (broad && deletes)
    findings.push(
      find('find-delete-broad', 'destructive', 'critical', `deletes files everywhere under ${broad}`),
    );
  if (execCommand.length > 0)
    findings.push(...classifyShell(execCommand.join(' ').replace(/\{\}/g, 'FILE'), depth + 1));
  return findings;
}

function destructive(
  name: string,
  args: readonly string[],
  flags: Set<string>,
  operands: readonly string[],
): CommandFinding[] {
  const out: CommandFinding[] = [];
  if (name === 'rm') {
    const recursive = flags.has('-r') || flags.has('-R') || flags.has('--recursive');
    if (flags.has('--no-preserve-root'))
      out.push(
        find(
          'rm-no-preserve-root',
          'destructive',
          'critical',
          'rm --no-preserve-root deletes the whole system',
        ),
      );
    const broad = operands.find((t) => isBroadPath(t));
    if (recursive && broad !== undefined)
      out.push(find('rm-recursive-broad', 'destructive', 'critical', `deletes ${broad} recursively`));
    else if (recursive) {
      const fromVariable = operands.find((t) => /^"?\$\{?\w+\}?\/\*?"?$/.test(t));
      if (fromVariable)
        out.push(
          find(
            'rm-variable-root',
            'destructive',
            'medium',
            `deletes ${fromVariable} recursively: an empty variable makes it /`,
          ),
        );
    }
  }
  if (
    /^(?:mkfs(?:\.\w+)?|mke2fs|mkswap|wipefs|sfdisk|fdisk|parted|sgdisk|cfdisk)$/.test(name) &&
    operands.some((o) => o.startsWith('/dev/'))
  ) {
    out.push(find('disk-format', 'destructive', 'critical', `${name} rewrites a disk or partition`));
  }
  if (name === 'dd') {
    const target = args.find((a) => a.startsWith('of='))?.slice(3);
    if (target && (isBlockDevice(target) || isBroadPath(target)))
      out.push(find('dd-device', 'destructive', 'critical', `dd overwrites ${target}`));
  }
  if (name === 'shred' && operands.some((o) => isBlockDevice(o) || isBroadPath(o))) {
    out.push(find('shred-device', 'destructive', 'critical', 'shred destroys a device or a whole tree'));
  }
  if (
    (name === 'chmod' || name === 'chown' || name === 'chgrp') &&
    (flags.has('-R') || flags.has('--recursive'))
  ) {
    const broad = operands.slice(1).find((t) => isBroadPath(t) && t !== '.');
    if (broad)
      out.push(
        find(
          'recursive-perms-broad',
          'destructive',
          'high',
          `${name} -R changes ownership or modes of ${broad}`,
        ),
      );
  }
  if (name === 'mv' && operands.length >= 2) {
    const src = operands.slice(0, -1).find((t) => isBroadPath(t) && t !== '.' && t !== '*');
    const dest = operands.at(-1)!;
    if (src) out.push(find('mv-broad', 'destructive', 'high', `moves ${src} away`));
    else if (dest === '/dev/null')
      out.push(find('mv-to-null', 'destructive', 'high', 'moves files into /dev/null'));
  }
  if (name === 'kill' && args.includes('-1') && args.some((a) => /^-(?:9|KILL|SIGKILL)$/.test(a))) {
    out.push(find('kill-all', 'destructive', 'high', 'kills every process the user owns'));
  }
  if (name === 'killall5' || /^(?:shutdown|reboot|halt|poweroff)$/.test(name)) {
    out.push(find('power-off', 'destructive', 'high', `${name} stops the machine or every process`));
  }
  if (name === 'init' && /^[06]$/.test(args[0] ?? ''))
    out.push(find('power-off', 'destructive', 'high', 'init 0/6 stops the machine'));
  if (
    name === 'systemctl' &&
    /^(?:poweroff|reboot|halt|kexec)$/.test(args.find((a) => !a.startsWith('-')) ?? '')
  ) {
    out.push(find('power-off', 'destructive', 'high', 'systemctl stops the machine'));
  }
  if (name === 'crontab' && flags.has('-r'))
    out.push(find('crontab-remove', 'destructive', 'medium', 'removes every cron job'));
  if (name === 'truncate' && operands.some((o) => /^\/(?:etc|var\/log|boot)\//.test(o))) {
    out.push(find('truncate-system', 'destructive', 'high', 'empties system files'));
  }
  if (name === 'git' && args[0] === 'push' && args.some((a) => a === '--mirror')) {
    out.push(
      find('git-push-mirror', 'destructive', 'medium', 'git push --mirror overwrites every remote branch'),
    );
  }
  return out;
}

function persistence(
  name: string,
  args: readonly string[],
  flags: Set<string>,
  operands: readonly string[],
  command: SimpleCommand,
): CommandFinding[] {
  const out: CommandFinding[] = [];
  if (name === 'crontab' && !flags.has('-l') && !flags.has('-r')) {
    out.push(
      find(
        'crontab-install',
        'persistence',
        flags.has('-e') ? 'medium' : 'high',
        'installs cron jobs that run later on their own',
      ),
    );
  }
  let dests: readonly string[] = [];
  if (name === 'tee') dests = operands;
  if (['cp', 'mv', 'install', 'ln', 'rsync'].includes(name) && operands.length >= 2)
    dests = [operands.at(-1)!];
  if (
    name === 'sed' &&
    (flags.has('-i') || args.some((a) => a.startsWith('-i') || a.startsWith('--in-place')))
  )
    dests = operands.slice(1);
  if (name === 'ssh-copy-id') dests = [];
  const target = dests.find((d) => isPersistencePath(d));
  if (target)
    out.push(
      find('write-autostart', 'persistence', 'high', `changes ${target}, which runs or grants access later`),
    );
  if (name === 'systemctl' && args.includes('enable')) {
    // Enabling a packaged system service is routine; a per-user unit is how implants survive logout.
    const user = args.includes('--user');
    out.push(
      find(
        'service-enable',
        'persistence',
        user ? 'medium' : 'info',
        'enables a service that starts on its own',
      ),
    );
  }
  if (
    (name === 'launchctl' && (args.includes('load') || args.includes('bootstrap'))) ||
    name === 'update-rc.d'
  ) {
    out.push(find('service-enable', 'persistence', 'medium', 'registers something that starts on its own'));
  }
  if (
    (name === 'useradd' || name === 'usermod') &&
    (args.includes('-o') || args.some((a) => /sudo|wheel|root/.test(a)))
  ) {
    out.push(find('privileged-user', 'persistence', 'high', 'creates or promotes a privileged account'));
  }
  if (name === 'at' || name === 'batch')
    out.push(find('at-job', 'persistence', 'medium', 'schedules a command to run later'));
  void command;
  return out;
}

function credentials(name: string, args: readonly string[], operands: readonly string[]): CommandFinding[] {
  const out: CommandFinding[] = [];
  if (isEnvDump(name, [name, ...args])) {
    out.push(find('env-dump', 'credentials', 'medium', 'prints the whole environment, secrets included'));
  }
  const readable = name === 'scp' || name === 'ssh' || name === 'rsync' ? withoutIdentity(args) : operands;
  if (!NON_READERS.has(name)) {
    const secret = readable.find((w) => isSecretPath(w.replace(/^@/, '')));
    if (secret)
      out.push(find('read-secret-file', 'credentials', 'high', `reads ${secret}, a credential file`));
    else {
      const mounted = readable.find((w) => isMountedSecret(w));
      if (mounted)
        out.push(find('read-mounted-secret', 'credentials', 'info', `reads the mounted secret ${mounted}`));
    }
  }
  if (
    name === 'security' &&
    /^(?:find-generic-password|find-internet-password|dump-keychain)$/.test(args[0] ?? '')
  ) {
    out.push(find('keychain-dump', 'credentials', 'high', 'reads passwords from the keychain'));
  }
  if (name === 'gpg' && args.some((a) => a.startsWith('--export-secret'))) {
    out.push(find('gpg-secret-export', 'credentials', 'high', 'exports private GPG keys'));
  }
  if (
    name === 'aws' &&
    args[0] === 'configure' &&
    (args.includes('export-credentials') || args.some((a) => /secret/.test(a)))
  ) {
    out.push(find('cloud-secret-read', 'credentials', 'high', 'prints cloud credentials'));
  }
  if (
    (name === 'gh' && args[0] === 'auth' && args[1] === 'token') ||
    (name === 'gcloud' && args.includes('print-access-token'))
  ) {
    out.push(find('cli-token-read', 'credentials', 'medium', 'prints an access token'));
  }
  return out;
}

function withoutIdentity(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-i' || args[i] === '-e' || args[i] === '-o' || args[i] === '-F') i++;
    else if (!args[i]!.startsWith('-')) out.push(args[i]!);
  }
  return out;
}

/** Arguments of curl/wget that carry data or the URL, as opposed to headers and credentials for the API. */
function payloadWords(
  name: string,
  args: readonly string[],
): { data: string[]; files: string[]; urls: string[] } {
  const data: string[] = [];
  const files: string[] = [];
  const urls: string[] = [];
  const headerFlags = new Set([
    '-H',
    '--header',
    '-u',
    '--user',
    '--oauth2-bearer',
    '-A',
    '--user-agent',
    '-e',
    '--referer',
    '-b',
    '--cookie',
    '--proxy-user',
  ]);
  const dataFlags = new Set([
    '-d',
    '--data',
    '--data-binary',
    '--data-raw',
    '--data-urlencode',
    '--data-ascii',
    '--json',
    '-F',
    '--form',
    '--form-string',
    '--post-data',
    '--body-data',
  ]);
  const fileFlags = new Set(['-T', '--upload-file', '--post-file', '--body-file']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = /^(--[a-z-]+)=(.*)$/s.exec(a);
    const flag = eq ? eq[1]! : a;
    const value = eq ? eq[2]! : args[i + 1];
    if (headerFlags.has(flag)) {
      if (!eq) i++;
    } else if (dataFlags.has(flag) && value !== undefined) {
      if (!eq) i++;
      data.push(value);
      const at = /(?:^|=)[@<](.+)$/.exec(value);
      if (at) files.push(at[1]!);
    } else if (fileFlags.has(flag) && value !== undefined) {
      if (!eq) i++;
      files.push(value);
    } else if (!a.startsWith('-')) urls.push(a);
    else if (
      [
        '-o',
        '--output',
        '-O',
        '-X',
        '--request',
        '-x',
        '--proxy',
        '-w',
        '--max-time',
        '-m',
        '--connect-timeout',
        '--retry',
        '--cacert',
        '--cert',
        '--key',
        '--resolve',
      ].includes(a)
    )
      i++;
  }
  void name;
  return { data, files, urls };
}

function network(
  name: string,
  args: readonly string[],
  command: SimpleCommand,
  depth: number,
): CommandFinding[] {
  const out: CommandFinding[] = [];
  if (name === 'curl' || name === 'wget' || name === 'http' || name === 'xh') {
    const { data, files, urls } = payloadWords(name, args);
    const destination = urls.join(' ');
    const suspicious = isSuspiciousDestination(destination);
    for (const file of files) {
      const severity = sensitivity(file);
      if (severity)
        out.push(
          find(
            'upload-sensitive',
            'exfiltration',
            severity,
            `uploads ${file} to ${destination || 'the network'}`,
          ),
        );
      else if (suspicious && file !== '-')
        out.push(find('upload-to-collector', 'exfiltration', 'high', `uploads ${file} to ${destination}`));
    }
    for (const word of [...data, ...urls]) {
      const subs = parseShell(`: ${quoteForReparse(word)}`).pipelines.flatMap((p) =>
        p.commands.flatMap((c) => c.substitutions),
      );
      const leaks = subs.some((s) => leaksSecrets(s, depth));
      // A secret mounted for this API may travel in a form body (OAuth token exchanges do); elsewhere it leaks.
      const mountedOnly = leaks && subs.every((s) => !leaksSecrets(s, depth) || isOnlyMountedRead(s, depth));
      if (leaks)
        out.push(
          find(
            'send-secret-data',
            'exfiltration',
            mountedOnly && !suspicious ? 'medium' : 'critical',
            `sends secrets read by $(...) to ${destination || 'the network'}`,
          ),
        );
      const secretVar = SECRET_ENV_VAR.exec(word);
      if (secretVar && !leaks) {
        out.push(
          find(
            'secret-in-payload',
            'exfiltration',
            suspicious ? 'critical' : 'medium',
            `puts $${secretVar[1]} in the request body or URL for ${destination || 'the network'}`,
          ),
        );
      }
    }
  }
  if (['nc', 'ncat', 'netcat'].includes(name)) {
    if (
      args.some(
        (a) =>
          a === '-e' ||
          a === '-c' ||
          /^-[a-z]*e$/.test(a) ||
          a.startsWith('--exec') ||
          a.startsWith('--sh-exec'),
      )
    )
      out.push(find('netcat-exec', 'reverse-shell', 'critical', `${name} hands a shell to a network peer`));
    const input = command.redirects.find((r) => r.op.endsWith('<') && !r.op.startsWith('<<'));
    if (input && sensitivity(input.target))
      out.push(find('netcat-send-secret', 'exfiltration', 'critical', `sends ${input.target} over ${name}`));
  }
  if (args.some((a) => /\/inet6?\/(?:tcp|udp)\//.test(a))) {
    out.push(
      find('gawk-inet', 'reverse-shell', 'critical', `${name} opens a network socket through /inet/tcp`),
    );
  }
  if (name === 'socat') {
    const joined = args.join(' ').toLowerCase();
    if (/(?:^|\s|,)(?:exec|system):/.test(joined) && /tcp|udp|openssl|ssl/.test(joined))
      out.push(
        find('socat-shell', 'reverse-shell', 'critical', 'socat connects a program to a network peer'),
      );
  }
  if (name === 'scp' || name === 'rsync' || name === 'sftp') {
    const plain = withoutIdentity(args);
    const remoteDest = plain.length >= 2 && /^[^/\s]*[^/\s:]:/.test(plain.at(-1)!);
    if (remoteDest) {
      for (const src of plain.slice(0, -1)) {
        const severity = sensitivity(src);
        if (severity)
          out.push(
            find('copy-sensitive-remote', 'exfiltration', severity, `copies ${src} to ${plain.at(-1)}`),
          );
      }
    }
  }
  if (name === 'ssh' && args.some((a) => a === '-R' || /^-[a-zA-Z]*R/.test(a))) {
    out.push(
      find(
        'ssh-reverse-tunnel',
        'reverse-shell',
        'high',
        'ssh -R opens a tunnel from a remote host into this machine',
      ),
    );
  }
  if (name === 'ngrok' || name === 'cloudflared' || name === 'lt' || name === 'localtunnel') {
    const exposesShell = args.includes('tcp') || args.some((a) => /^(?:22|2222|4444|5900|3389)$/.test(a));
    out.push(
      find(
        'tunnel',
        'reverse-shell',
        exposesShell ? 'high' : 'medium',
        `${name} exposes a local port to the internet`,
      ),
    );
  }
  if (['chisel', 'frpc', 'bore', 'pinggy', 'rathole', 'gost'].includes(name)) {
    out.push(
      find('tunnel', 'reverse-shell', 'high', `${name} opens a tunnel that bypasses the network policy`),
    );
  }
  if (
    ['dig', 'nslookup', 'host', 'ping'].includes(name) &&
    command.substitutions.some((s) => leaksSecrets(s, depth))
  ) {
    out.push(find('dns-exfiltration', 'exfiltration', 'critical', 'encodes secrets into a DNS lookup'));
  }
  return out;
}

/** Whether a substitution's output carries secrets: credential reads, env dumps, mounted secrets, dotenv files. */
function leaksSecrets(script: string, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  return (
    classifyShell(script, depth + 1).some((f) => f.category === 'credentials' && f.severity !== 'info') ||
    mountedRead(script) ||
    parseShell(script).pipelines.some((p) =>
      p.commands.some((c) => sensitiveSource(c, effectiveWords(c.words).words, depth + 1)),
    )
  );
}

function isOnlyMountedRead(script: string, depth: number): boolean {
  return (
    mountedRead(script) &&
    !classifyShell(script, depth + 1).some((f) => f.category === 'credentials' && f.severity !== 'info')
  );
}

function mountedRead(script: string): boolean {
  return parseShell(script).pipelines.some((p) =>
    p.commands.some((c) => {
      const w = effectiveWords(c.words).words;
      return (
        !NON_READERS.has(baseName(w[0] ?? '')) &&
        [...w.slice(1), ...c.redirects.map((r) => r.target)].some((x) => isMountedSecret(x) || isDotEnv(x))
      );
    }),
  );
}

/** Double quotes around a word so its `$(...)` can be found again by the parser. */
function quoteForReparse(word: string): string {
  return `"${word.replace(/"/g, '\\"')}"`;
}

/** How bad sending this path away would be; undefined for an ordinary file. */
function sensitivity(path: string): Severity | undefined {
  if (isSecretPath(path) || isMountedSecret(path)) return 'critical';
  if (isHomePath(path) && (isBroadPath(path) || /\/\.[^/]+/.test(path))) return 'critical';
  if (isBroadPath(path) && path !== '.' && path !== '*') return 'critical';
  if (isDotEnv(path) || /^\/etc\/(?:passwd|hosts|group)$/.test(path)) return 'high';
  return undefined;
}

function classifyRedirects(command: SimpleCommand, name: string, depth: number): CommandFinding[] {
  const out: CommandFinding[] = [];
  for (const r of command.redirects) {
    if (/^\/dev\/(?:tcp|udp)\//.test(r.target)) {
      const shell = SHELLS.has(name) || name === 'exec' || command.words.length === 0;
      const fdDup = command.redirects.some(
        (x) => /[<>]&$/.test(x.op) || x.op === '&>' || /^\d>&/.test(`${x.op}${x.target}`),
      );
      out.push(
        shell || fdDup
          ? find(
              'dev-tcp-shell',
              'reverse-shell',
              'critical',
              'connects a shell to a remote host over /dev/tcp',
            )
          : find('dev-tcp', 'exfiltration', 'high', `opens a raw connection to ${r.target}`),
      );
      continue;
    }
    const writes = /^(?:\d?>|\d?>>|&>|&>>|>\||\d?<>)$/.test(r.op);
    if (writes && isBlockDevice(r.target))
      out.push(find('write-device', 'destructive', 'critical', `overwrites the device ${r.target}`));
    else if (writes && isPersistencePath(r.target))
      out.push(
        find(
          'write-autostart',
          'persistence',
          'high',
          `writes to ${r.target}, which runs or grants access later`,
        ),
      );
    else if (writes && /^\/etc\/(?:passwd|shadow|group|hosts|resolv\.conf)$/.test(r.target))
      out.push(find('overwrite-system-file', 'destructive', 'high', `overwrites ${r.target}`));
    if (r.op.endsWith('<') && !r.op.includes('<<') && isSecretPath(r.target) && !NON_READERS.has(name)) {
      out.push(find('read-secret-file', 'credentials', 'high', `reads ${r.target}, a credential file`));
    }
  }
  void depth;
  return out;
}

/** A long base64 literal on a command line is a payload someone did not want read. */
function encodedLiterals(words: readonly string[]): CommandFinding[] {
  const blob = words.find((w) => /[A-Za-z0-9+/]{120,}={0,2}/.test(w) && !/^[a-z]+:\/\//i.test(w));
  return blob ? [find('encoded-blob', 'obfuscation', 'medium', 'carries a long base64 payload')] : [];
}
