/**
 * Rules for scripts in Python, JavaScript, Ruby, Perl and PHP. No parser per language: the rules
 * look at calls and string literals line by line, and at which capabilities a file combines
 * (reading secrets and sending data, a socket and a shell), which is what separates a tool from
 * an implant. Shell strings handed to a subprocess go through the shell classifier.
 */
import { classifyShell } from './command-rules.js';
import type { CommandFinding } from './findings.js';
import { isBroadPath, isPersistencePath, isSecretPath } from './paths.js';

export interface CodeFinding {
  line: number;
  finding: CommandFinding;
}

const SPAWN =
  /\bos\.(?:system|popen|exec[lv]p?e?)\b|\bsubprocess\.|\bPopen\(|\bcheck_output\(|\bexecSync\(|\bspawnSync\(|\bexecFile(?:Sync)?\(|\bspawn\(|\bchild_process\b|\bsystem\(|\bshell_exec\(|\bpassthru\(|\bproc_open\(|\bIO\.popen\b|%x\{|\bexec\(\s*['"`]/;
const DECODE =
  /b64decode|b32decode|base64\.decode|\batob\(|Buffer\.from\([^)]*['"](?:base64|hex)['"]|fromhex\(|unhexlify|zlib\.decompress|marshal\.loads|codecs\.decode|decode\(\s*['"](?:hex|base64|rot.?13)|\bgzinflate\(|\bstr_rot13\(|base64_decode\(|unpack\(\s*['"](?:m|H)|Base64\.decode64|\.unpack1?\(\s*['"]m/;
const EXEC_CALL =
  /\b(?:exec|eval|compile)\s*\(|\bnew\s+Function\s*\(|\bFunction\s*\(|\binstance_eval\b|\bassert\s*\(\s*\$/;
const ENV_WHOLE =
  /\bdict\(\s*os\.environ\s*\)|os\.environ\.(?:copy|items|values)\(\)|json\.dumps\(\s*(?:dict\()?os\.environ|str\(\s*os\.environ\s*\)|\*\*os\.environ|JSON\.stringify\(\s*process\.env\s*\)|Object\.(?:entries|keys|values|assign)\(\s*(?:\{\},\s*)?process\.env\s*\)|\.\.\.process\.env\b|\bENV\.to_(?:h|a)\b|\$_ENV\b|\bgetenv\(\s*\)|%ENV\b|os\.environ\s*\)/;
const PASS_ENV_TO_CHILD = /\benv\s*[=:]\s*[{(]?\s*(?:dict\(|\*\*|\.\.\.)|\benv\s*=\s*os\.environ/;
const NETWORK_SEND =
  /requests\.(?:post|put|patch)\(|httpx\.(?:post|put|AsyncClient|Client)|urlopen\(|urllib\.request|http\.client|\.sendall?\(|socket\.(?:socket|create_connection)\(|\bfetch\(|axios\.(?:post|put)\(|https?\.request\(|XMLHttpRequest|Net::HTTP|\bsmtplib\b|\bftplib\b|\bparamiko\b|dns\.resolver|new\s+WebSocket|\bcurl_exec\(|LWP::UserAgent|HTTP::Tiny/;
const SOCKET_CONNECT =
  /socket\.socket\(|\.connect\(\s*\(|\bfsockopen\(|TCPSocket\.(?:new|open)|\bnet\.(?:connect|createConnection|Socket)\b|IO::Socket::INET|socket\(\s*S,|\bnew\s+net\.Socket/;
const SHELL_HANDOFF =
  /\bdup2\(|pty\.spawn|['"]\/bin\/(?:ba|z)?sh['"]|['"](?:ba|z)?sh['"]\s*,\s*\[?\s*['"]-i|\bexec\s*\(\s*['"]\/bin|proc_open\(|\.pipe\(\s*\w+\.stdin|spawn\(\s*['"](?:\/bin\/)?(?:ba)?sh['"]/;
const READ_OP =
  /\bopen\(|read_text|read_bytes|readFile|\bFile\.read|file_get_contents|\bcopy(?:file|tree|FileSync)?\(|shutil\.|\bcat\b|os\.walk|\bglob\b|listdir|readdir|\.read\(/;
const WRITE_OP =
  /open\([^)]*['"](?:a|w|a\+|w\+|ab|wb)['"]|appendFile|writeFile|File\.(?:write|open\([^)]*['"][aw])|file_put_contents|write_text|\.write\(/;
const RM_TREE =
  /\brmtree\(|\brmSync\(|\brm_rf\b|\brimraf\b|FileUtils\.rm_r|\brmdirSync\([^)]*recursive|\bremove_tree\(/;

function literals(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/(['"`])((?:\\.|(?!\1)[^\\])*)\1/g))
    out.push(m[2]!.replace(/\\(["'\\])/g, '$1'));
  return out;
}

export function classifyCode(text: string): CodeFinding[] {
  const lines = text.split('\n');
  const out: CodeFinding[] = [];
  const at = (line: number, finding: CommandFinding) => out.push({ line, finding });
  let secretReadLine = 0;
  let envDumpLine = 0;
  let sendLine = 0;
  let socketLine = 0;
  let handoffLine = 0;
  let decodeLine = 0;
  let dynamicExecLine = 0;
  let persistLiteralLine = 0;
  let writeLine = 0;
  lines.forEach((line, index) => {
    const n = index + 1;
    const trimmed = line.trim();
    if (trimmed.startsWith('#') && !trimmed.startsWith('#!')) return;
    if (trimmed.startsWith('//')) return;
    const strings = literals(line);
    if (SPAWN.test(line)) {
      // A subprocess line and the next two (list arguments often wrap): judge the shell text it runs.
      const call = [line, lines[index + 1] ?? '', lines[index + 2] ?? ''].join(' ');
      const parts = literals(call.slice(0, call.search(/\)\s*$/) > 0 ? undefined : call.length));
      const shellText = parts.join(' ');
      if (shellText.trim()) for (const f of classifyShell(shellText, 1)) at(n, f);
    }
    if (DECODE.test(line)) decodeLine ||= n;
    if (EXEC_CALL.test(line)) {
      if (DECODE.test(line) || /\\x[0-9a-f]{2}.*\\x[0-9a-f]{2}/i.test(line)) {
        at(n, {
          rule: 'exec-decoded',
          category: 'obfuscation',
          severity: 'critical',
          reason: 'runs code it decodes at run time',
        });
      } else if (!/\(\s*['"`][^'"`]*['"`]\s*\)/.test(line) && !/\bre\.compile\(|\.compile\(/.test(line)) {
        dynamicExecLine ||= n;
      }
    }
    if (ENV_WHOLE.test(line) && !PASS_ENV_TO_CHILD.test(line)) {
      envDumpLine ||= n;
      at(n, {
        rule: 'env-dump',
        category: 'credentials',
        severity: 'medium',
        reason: 'collects the whole environment, secrets included',
      });
    }
    const secret = strings.find((s) => isSecretPath(s) || isSecretPath(s.replace(/^~?\/?/, '~/')));
    if (secret) {
      const reads = READ_OP.test(line) || READ_OP.test(lines[index + 1] ?? '');
      if (reads) secretReadLine ||= n;
      at(n, {
        rule: 'read-secret-file',
        category: 'credentials',
        severity: reads ? 'high' : 'info',
        reason: reads ? `reads ${secret}, a credential file` : `names ${secret} without reading it`,
      });
    }
    if (NETWORK_SEND.test(line)) sendLine ||= n;
    if (SOCKET_CONNECT.test(line)) socketLine ||= n;
    if (SHELL_HANDOFF.test(line)) handoffLine ||= n;
    if (strings.some((s) => isPersistencePath(s) || isPersistencePath(s.replace(/^~?\/?/, '/x/'))))
      persistLiteralLine ||= n;
    if (WRITE_OP.test(line)) writeLine ||= n;
    if (RM_TREE.test(line)) {
      const broad =
        strings.find((s) => isBroadPath(s)) ??
        (/expanduser\(\s*['"]~['"]\s*\)|os\.homedir\(\)|Path\.home\(\)/.test(line) ? '~' : undefined);
      if (broad !== undefined)
        at(n, {
          rule: 'rmtree-broad',
          category: 'destructive',
          severity: 'critical',
          reason: `deletes ${broad} recursively`,
        });
    }
    const blob = strings.find((s) => /^[A-Za-z0-9+/]{200,}={0,2}$/.test(s));
    if (blob)
      at(n, {
        rule: 'encoded-blob',
        category: 'obfuscation',
        severity: 'medium',
        reason: 'carries a long base64 payload',
      });
  });
  if ((secretReadLine || envDumpLine) && sendLine) {
    at(sendLine, {
      rule: 'send-secrets',
      category: 'exfiltration',
      severity: 'critical',
      reason: `sends data after reading ${secretReadLine ? 'credential files' : 'the whole environment'} (line ${secretReadLine || envDumpLine})`,
    });
  }
  if (socketLine && handoffLine) {
    at(socketLine, {
      rule: 'socket-shell',
      category: 'reverse-shell',
      severity: 'critical',
      reason: 'connects a socket and hands it a shell',
    });
  }
  if (decodeLine && dynamicExecLine) {
    at(dynamicExecLine, {
      rule: 'exec-decoded',
      category: 'obfuscation',
      severity: 'high',
      reason: `runs code built from data decoded on line ${decodeLine}`,
    });
  }
  if (persistLiteralLine && writeLine) {
    at(persistLiteralLine, {
      rule: 'write-autostart',
      category: 'persistence',
      severity: 'high',
      reason: 'writes to a start-up file, cron or ssh keys',
    });
  }
  return out;
}
