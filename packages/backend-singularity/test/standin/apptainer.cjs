#!/usr/bin/env node
/*
 * TEST STAND-IN for the `apptainer` command line: not Apptainer, not a container runtime to use.
 * It accepts the subcommands and flags of Apptainer 1.3's documented CLI that agentbox's
 * singularity backend uses, refuses every other flag the way cobra does, and really runs the
 * commands in an isolated root (see README.md beside this file). Runs as root only.
 */
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const VERSION = '1.3.6-agentbox-standin';
const STATE =
  process.env.AGENTBOX_APPTAINER_STANDIN_STATE ||
  path.join(os.tmpdir(), `apptainer-standin-${process.getuid()}`);

/** Exit the way apptainer does on a usage error (cobra's message, status 255). */
function usage(message) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(255);
}
function fatal(message) {
  process.stderr.write(`FATAL:   ${message}\n`);
  process.exit(255);
}

// Flags as Apptainer's reference documents them for `exec` and `instance start` (the action
// flags both share): [long, short, takes a value]. Those the stand-in implements are in
// IMPLEMENTED; the rest are known to Apptainer, so they are refused with "not implemented"
// rather than "unknown flag".
const ACTION_FLAGS = [
  ['add-caps', '', true],
  ['allow-setuid', '', false],
  ['app', '', true],
  ['apply-cgroups', '', true],
  ['authfile', '', true],
  ['bind', 'B', true],
  ['blkio-weight', '', true],
  ['blkio-weight-device', '', true],
  ['cleanenv', 'e', false],
  ['compat', '', false],
  ['contain', 'c', false],
  ['containall', 'C', false],
  ['cpu-shares', '', true],
  ['cpus', '', true],
  ['cpuset-cpus', '', true],
  ['cpuset-mems', '', true],
  ['disable-cache', '', false],
  ['dns', '', true],
  ['docker-host', '', true],
  ['docker-login', '', false],
  ['drop-caps', '', true],
  ['env', '', true],
  ['env-file', '', true],
  ['fakeroot', 'f', false],
  ['fusemount', '', true],
  ['help', 'h', false],
  ['home', 'H', true],
  ['hostname', '', true],
  ['ipc', 'i', false],
  ['keep-privs', '', false],
  ['memory', '', true],
  ['memory-reservation', '', true],
  ['memory-swap', '', true],
  ['mount', '', true],
  ['net', 'n', false],
  ['network', '', true],
  ['network-args', '', true],
  ['no-eval', '', false],
  ['no-home', '', false],
  ['no-https', '', false],
  ['no-init', '', false],
  ['no-mount', '', true],
  ['no-privs', '', false],
  ['no-umask', '', false],
  ['nv', '', false],
  ['nvccli', '', false],
  ['oom-kill-disable', '', false],
  ['overlay', 'o', true],
  ['pem-path', '', true],
  ['pid', 'p', false],
  ['pids-limit', '', true],
  ['rocm', '', false],
  ['scratch', 'S', true],
  ['security', '', true],
  ['sharens', '', false],
  ['userns', 'u', false],
  ['uts', '', false],
  ['workdir', 'W', true],
  ['writable', 'w', false],
  ['writable-tmpfs', '', false],
];
const COMMANDS = {
  exec: {
    flags: [...ACTION_FLAGS, ['pwd', '', true]],
    implemented: ['cleanenv', 'env', 'pwd', 'help'],
  },
  'instance start': {
    flags: [...ACTION_FLAGS, ['pid-file', '', true]],
    implemented: [
      'bind',
      'cleanenv',
      'contain',
      'containall',
      'cpus',
      'memory',
      'net',
      'network',
      'no-home',
      'overlay',
      'pids-limit',
      'writable-tmpfs',
      'help',
    ],
  },
  'instance stop': {
    flags: [
      ['all', 'a', false],
      ['force', 'F', false],
      ['help', 'h', false],
      ['signal', 's', true],
      ['timeout', 't', true],
      ['user', 'u', true],
    ],
    implemented: ['force', 'help'],
  },
  'instance list': {
    flags: [
      ['help', 'h', false],
      ['json', 'j', false],
      ['logs', 'l', false],
      ['user', 'u', true],
    ],
    implemented: ['json', 'help'],
  },
  version: { flags: [['help', 'h', false]], implemented: ['help'] },
};
const GLOBAL_FLAGS = [
  ['debug', 'd', false],
  ['quiet', 'q', false],
  ['silent', 's', false],
  ['verbose', 'v', false],
  ['nocolor', '', false],
  ['version', '', false],
  ['help', 'h', false],
];

/**
 * Parse flags up to the first positional argument (cobra with interspersed flags off, as
 * apptainer's action commands are). Returns { values: Map(long -> [values]), rest }.
 */
function parseFlags(args, table, implemented, stopAtPositional) {
  const values = new Map();
  const positional = [];
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtPositional) break;
      positional.push(arg);
      continue;
    }
    let name, inline;
    let spec;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      spec = table.find((f) => f[0] === name);
      if (!spec) usage(`unknown flag: --${name}`);
    } else {
      const short = arg[1];
      spec = table.find((f) => f[1] === short);
      if (!spec) usage(`unknown shorthand flag: '${short}' in ${arg}`);
      name = spec[0];
      inline = arg.length > 2 ? arg.slice(2).replace(/^=/, '') : undefined;
    }
    if (!implemented.includes(name))
      fatal(`--${name} is a real apptainer flag that this test stand-in does not implement`);
    let value;
    if (spec[2]) {
      value = inline ?? args[++i];
      if (value === undefined) usage(`flag needs an argument: --${name}`);
    } else {
      if (inline !== undefined && !['true', 'false'].includes(inline))
        usage(
          `invalid argument "${inline}" for "--${name}" flag: strconv.ParseBool: parsing "${inline}": invalid syntax`,
        );
      value = inline ?? 'true';
    }
    if (!values.has(name)) values.set(name, []);
    values.get(name).push(value);
  }
  return { values, rest: [...positional, ...args.slice(i)] };
}

const flag = (values, name) => (values.get(name) ?? []).at(-1) === 'true';
const one = (values, name) => (values.get(name) ?? []).at(-1);
const all = (values, name) => (values.get(name) ?? []).flatMap((v) => (name === 'bind' ? v.split(',') : [v]));

function main(argv) {
  // Global flags come before the command.
  let i = 0;
  while (i < argv.length && argv[i].startsWith('-')) {
    const { values } = parseFlags(
      [argv[i]],
      GLOBAL_FLAGS,
      GLOBAL_FLAGS.map((f) => f[0]),
      true,
    );
    if (flag(values, 'version')) {
      process.stdout.write(`apptainer version ${VERSION}\n`);
      return;
    }
    if (flag(values, 'help')) {
      process.stdout.write('Usage: apptainer [global options...] <command>\n');
      return;
    }
    i++;
  }
  const [command, ...rest] = argv.slice(i);
  if (command === undefined) usage('a command is required');
  if (command === 'version') {
    parseFlags(rest, COMMANDS.version.flags, COMMANDS.version.implemented, false);
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (command === 'exec') return execCommand(rest);
  if (command === 'instance') {
    const [sub, ...args] = rest;
    if (sub === 'start') return instanceStart(args);
    if (sub === 'stop') return instanceStop(args);
    if (sub === 'list') return instanceList(args);
    usage(`unknown command "${sub ?? ''}" for "apptainer instance"`);
  }
  if (
    [
      'build',
      'run',
      'shell',
      'pull',
      'inspect',
      'overlay',
      'sif',
      'key',
      'cache',
      'oci',
      'test',
      'push',
      'search',
      'sign',
      'verify',
      'remote',
      'registry',
      'plugin',
      'checkpoint',
      'config',
      'delete',
      'keyserver',
      'run-help',
      'help',
      'completion',
    ].includes(command)
  )
    fatal(`"${command}" is a real apptainer command that this test stand-in does not implement`);
  usage(`unknown command "${command}" for "apptainer"`);
}

// ---------------------------------------------------------------------------------------------
// instances

const NAME = /^[a-zA-Z0-9._-]+$/;

/** Sleep without a child process (the CLI is synchronous while it waits). */
function pause(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
const statePath = (name) => path.join(STATE, `${name}.json`);

function readNamespace(pid, kind) {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/** The instance's recorded state if its init still runs (its pid still names the same namespace). */
function liveInstance(name) {
  let state;
  try {
    state = JSON.parse(fs.readFileSync(statePath(name), 'utf8'));
  } catch {
    return undefined;
  }
  if (readNamespace(state.pid, 'pid') !== state.pidNs) {
    forget(state);
    return undefined;
  }
  return state;
}

function forget(state) {
  for (const suffix of ['json', 'out', 'err', 'ready'])
    fs.rmSync(path.join(STATE, `${state.name}.${suffix}`), { force: true });
  fs.rmSync(path.join(STATE, `${state.name}.root`), { recursive: true, force: true });
  for (const dir of state.cgroups ?? [])
    try {
      fs.rmdirSync(dir);
    } catch {}
}

function requireRoot() {
  if (process.getuid() !== 0) fatal('the apptainer test stand-in needs root (it mounts and unshares)');
}

/** cgroup directories (v1 controllers or one v2 group) for the limits asked for, or a fatal error. */
function makeCgroups(name, limits) {
  const wanted = Object.entries(limits).filter(([, v]) => v !== undefined);
  if (wanted.length === 0) return [];
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dirs = [];
  const write = (dir, file, value) => fs.writeFileSync(path.join(dir, file), String(value));
  try {
    for (const [what, value] of wanted) {
      const controller = { pids: 'pids', memory: 'memory', cpus: 'cpu' }[what];
      const dir = v2
        ? `/sys/fs/cgroup/apptainer-standin-${name}`
        : `/sys/fs/cgroup/${controller}/apptainer-standin-${name}`;
      fs.mkdirSync(dir, { recursive: true });
      if (!dirs.includes(dir)) dirs.push(dir);
      if (what === 'pids') write(dir, 'pids.max', value);
      if (what === 'memory') write(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes', value);
      if (what === 'cpus') {
        const quota = Math.round(Number(value) * 100000);
        if (v2) write(dir, 'cpu.max', `${quota} 100000`);
        else {
          write(dir, 'cpu.cfs_period_us', 100000);
          write(dir, 'cpu.cfs_quota_us', quota);
        }
      }
    }
  } catch (error) {
    for (const dir of dirs)
      try {
        fs.rmdirSync(dir);
      } catch {}
    fatal(`container creation failed: while applying cgroups config: ${error.message}`);
  }
  return dirs;
}

function memoryBytes(text) {
  const m = /^(\d+)([kmgKMG]?)[bB]?$/.exec(text ?? '');
  if (!m) usage(`invalid memory value ${text}`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
}

// The instance's init: runs as pid 1 of fresh mount/pid/ipc/uts (and net) namespaces, builds the
// root and stays as a reaper. $1 state dir, $2 name, $3 image, $4 upper mode, $5 overlay dir,
// $6 containall, then cgroup dirs up to "--", then binds "src:dst:ro|rw".
const INIT = `set -e
state=$1 name=$2 image=$3 mode=$4 overlay=$5 contain=$6; shift 6
while [ "$1" != -- ]; do echo 0 > "$1/cgroup.procs"; shift; done; shift
root="$state/$name.root"
mkdir -p "$root/merged"
mount --make-rprivate /
case "$mode" in
  overlay) mkdir -p "$overlay/upper" "$overlay/work"; up="$overlay/upper" wk="$overlay/work" ;;
  *) mkdir -p "$root/t"; mount -t tmpfs -o size=64m tmpfs "$root/t"
     mkdir -p "$root/t/upper" "$root/t/work"; up="$root/t/upper" wk="$root/t/work" ;;
esac
m="$root/merged"
mount -t overlay overlay -o "lowerdir=$image,upperdir=$up,workdir=$wk" "$m"
for d in proc dev tmp var/tmp; do mkdir -p "$m/$d"; done
for b; do dst=$(printf '%s' "$b" | cut -d: -f2); src=$(printf '%s' "$b" | cut -d: -f1)
  if [ -d "$src" ]; then mkdir -p "$m$dst"; else mkdir -p "$(dirname "$m$dst")"; [ -e "$m$dst" ] || : > "$m$dst"; fi; done
[ "$mode" = readonly ] && mount -o remount,ro "$m"
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount -t tmpfs -o nosuid,mode=755,size=1m tmpfs "$m/dev"
for d in null zero full random urandom tty; do : > "$m/dev/$d"; mount --bind "/dev/$d" "$m/dev/$d"; done
ln -s /proc/self/fd "$m/dev/fd"; ln -s /proc/self/fd/0 "$m/dev/stdin"; ln -s /proc/self/fd/1 "$m/dev/stdout"; ln -s /proc/self/fd/2 "$m/dev/stderr"
mkdir "$m/dev/shm"; mount -t tmpfs -o nosuid,nodev tmpfs "$m/dev/shm"
if [ "$contain" = 1 ]; then mount -t tmpfs -o nosuid,nodev tmpfs "$m/tmp"; mount -t tmpfs -o nosuid,nodev tmpfs "$m/var/tmp"; fi
for b; do dst=$(printf '%s' "$b" | cut -d: -f2); src=$(printf '%s' "$b" | cut -d: -f1); opt=$(printf '%s' "$b" | cut -d: -f3)
  mount --bind "$src" "$m$dst"; [ "$opt" = ro ] && mount -o remount,bind,ro "$m$dst"; done
hostname "$name" 2>/dev/null || true
ip link set lo up 2>/dev/null || true
: > "$state/$name.ready"
exec chroot "$m" /bin/sh -c 'trap "" TERM INT HUP; while :; do sleep 3600 & wait; done'`;

function instanceStart(args) {
  const { values, rest } = parseFlags(
    args,
    COMMANDS['instance start'].flags,
    COMMANDS['instance start'].implemented,
    true,
  );
  if (flag(values, 'help')) {
    process.stdout.write(
      'Usage: apptainer instance start [start options...] <container path> <instance name> [startscript args...]\n',
    );
    return;
  }
  if (rest.length < 2) usage(`requires at least 2 arg(s), only received ${rest.length}`);
  const [image, name] = rest;
  requireRoot();
  if (!NAME.test(name))
    fatal(`instance name ${name} must only contain alphanumeric characters, dots, underscores and dashes`);
  let imageStat;
  try {
    imageStat = fs.statSync(image);
  } catch {
    fatal(`could not open image ${image}: no such file or directory`);
  }
  if (!imageStat.isDirectory())
    fatal(`this test stand-in only runs sandbox (directory) images, not ${image}`);
  if (!fs.existsSync(path.join(image, 'bin/sh'))) fatal(`${image} has no /bin/sh`);
  fs.mkdirSync(STATE, { recursive: true, mode: 0o700 });
  if (liveInstance(name)) fatal(`instance ${name} already exists`);
  const overlays = values.get('overlay') ?? [];
  if (overlays.length > 1) fatal('this test stand-in takes one --overlay');
  const overlay = overlays[0];
  if (overlay !== undefined && !fs.statSync(overlay, { throwIfNoEntry: false })?.isDirectory())
    fatal(`overlay ${overlay}: only directory overlays are supported by this test stand-in`);
  if (overlay !== undefined && flag(values, 'writable-tmpfs'))
    fatal('--writable-tmpfs cannot be used with --overlay');
  const mode = overlay !== undefined ? 'overlay' : flag(values, 'writable-tmpfs') ? 'tmpfs' : 'readonly';
  const network = one(values, 'network');
  if (network !== undefined && !flag(values, 'net')) fatal('--network requires --net');
  if (network !== undefined && network !== 'none')
    fatal(`network ${network}: this test stand-in only has "none"`);
  const ownNet = flag(values, 'net');
  const binds = all(values, 'bind').map((spec) => {
    const [src, dst = src, opt = 'rw', ...more] = spec.split(':');
    if (more.length > 0 || !['ro', 'rw'].includes(opt) || !src || !dst.startsWith('/'))
      fatal(`while parsing bind path '${spec}': invalid bind spec`);
    if (!fs.existsSync(src))
      fatal(
        `container creation failed: mount ${src}->${dst} error: while mounting ${src}: mount source ${src} doesn't exist`,
      );
    return `${path.resolve(src)}:${path.posix.normalize(dst)}:${opt}`;
  });
  const contain = flag(values, 'containall') || flag(values, 'contain');
  const cgroups = makeCgroups(name, {
    pids: one(values, 'pids-limit'),
    memory: one(values, 'memory') === undefined ? undefined : memoryBytes(one(values, 'memory')),
    cpus: one(values, 'cpus'),
  });
  const log = (kind) => path.join(STATE, `${name}.${kind}`);
  fs.rmSync(path.join(STATE, `${name}.ready`), { force: true });
  const ns = ['--mount', '--pid', '--ipc', '--uts', '--fork', ...(ownNet ? ['--net'] : [])];
  const holder = spawn(
    'unshare',
    [
      ...ns,
      '--',
      '/bin/sh',
      '-c',
      INIT,
      'init',
      STATE,
      name,
      path.resolve(image),
      mode,
      overlay === undefined ? '' : path.resolve(overlay),
      contain ? '1' : '0',
      ...cgroups,
      '--',
      ...binds,
    ],
    {
      detached: true,
      stdio: ['ignore', fs.openSync(log('out'), 'w'), fs.openSync(log('err'), 'w')],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    },
  );
  holder.unref();
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(log('ready'))) {
    if (Date.now() > deadline || readNamespace(holder.pid, 'pid') === undefined) {
      try {
        process.kill(holder.pid, 'SIGKILL');
      } catch {}
      for (const dir of cgroups)
        try {
          fs.rmdirSync(dir);
        } catch {}
      fatal(
        `container creation failed: ${fs.readFileSync(log('err'), 'utf8').trim() || 'the instance did not start'}`,
      );
    }
    pause(20);
  }
  const children = fs
    .readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/);
  const pid = Number(children[0]);
  const state = {
    name,
    pid,
    pidNs: readNamespace(pid, 'pid'),
    ownNet,
    image: path.resolve(image),
    overlay,
    cgroups,
    logOutPath: log('out'),
    logErrPath: log('err'),
    createdAt: new Date().toISOString(),
  };
  fs.writeFileSync(statePath(name), JSON.stringify(state));
  process.stdout.write(`INFO:    instance started successfully\n`);
}

function instanceStop(args) {
  const { values, rest } = parseFlags(
    args,
    COMMANDS['instance stop'].flags,
    COMMANDS['instance stop'].implemented,
    false,
  );
  if (rest.length !== 1) usage('requires an instance name (--all is not implemented by this stand-in)');
  const state = liveInstance(rest[0]);
  if (!state) fatal(`no instance found with name ${rest[0]}`);
  // The kernel ends every process of the instance's PID namespace with its init.
  try {
    process.kill(state.pid, 'SIGKILL');
  } catch {}
  const deadline = Date.now() + 10_000;
  while (readNamespace(state.pid, 'pid') === state.pidNs && Date.now() < deadline) pause(20);
  if (readNamespace(state.pid, 'pid') === state.pidNs) fatal(`instance ${state.name} did not stop`);
  forget(state);
  void flag(values, 'force');
  process.stdout.write(`INFO:    Stopping ${state.name} instance of ${state.image} (PID=${state.pid})\n`);
}

function instanceList(args) {
  const { values, rest } = parseFlags(
    args,
    COMMANDS['instance list'].flags,
    COMMANDS['instance list'].implemented,
    false,
  );
  let names = [];
  try {
    names = fs
      .readdirSync(STATE)
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -5));
  } catch {}
  const live = names
    .map(liveInstance)
    .filter(Boolean)
    .filter((s) => rest.length === 0 || s.name === rest[0]);
  if (flag(values, 'json')) {
    const instances = live.map((s) => ({
      instance: s.name,
      pid: s.pid,
      ip: '',
      logErrPath: s.logErrPath,
      logOutPath: s.logOutPath,
      img: s.image,
    }));
    process.stdout.write(`${JSON.stringify({ instances }, null, 4)}\n`);
    return;
  }
  process.stdout.write('INSTANCE NAME    PID      IP    IMAGE\n');
  for (const s of live)
    process.stdout.write(`${s.name.padEnd(17)}${String(s.pid).padEnd(9)}      ${s.image}\n`);
}

// ---------------------------------------------------------------------------------------------
// exec

function execCommand(args) {
  const { values, rest } = parseFlags(args, COMMANDS.exec.flags, COMMANDS.exec.implemented, true);
  if (flag(values, 'help')) {
    process.stdout.write('Usage: apptainer exec [exec options...] <container> <command>\n');
    return;
  }
  if (rest.length < 2) usage(`requires at least 2 arg(s), only received ${rest.length}`);
  const [target, ...command] = rest;
  if (!target.startsWith('instance://'))
    fatal(`this test stand-in only runs commands in instances (instance://NAME), not ${target}`);
  requireRoot();
  const state = liveInstance(target.slice('instance://'.length));
  if (!state) fatal(`no instance found with name ${target.slice('instance://'.length)}`);
  // Apptainer's environment rules: the host's environment unless --cleanenv; APPTAINERENV_X
  // becomes X either way; --env last.
  const env = {};
  if (
    !flag(values, 'cleanenv') &&
    process.env.APPTAINER_CLEANENV !== 'true' &&
    process.env.APPTAINER_CLEANENV !== '1'
  )
    for (const [k, v] of Object.entries(process.env)) if (!/^(APPTAINER|SINGULARITY)/.test(k)) env[k] = v;
  env.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('APPTAINERENV_')) env[k.slice(13)] = v;
  for (const pair of values.get('env') ?? []) {
    for (const item of pair.split(',')) {
      const eq = item.indexOf('=');
      if (eq < 1) usage(`invalid --env value ${item}`);
      env[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  const pwd = one(values, 'pwd');
  const ns = ['-m', '-u', '-i', '-p', ...(state.ownNet ? ['-n'] : []), '-r', '-w'];
  const argv =
    pwd === undefined ? command : ['/bin/sh', '-c', 'cd -- "$0" || exit 1; exec "$@"', pwd, ...command];
  // The command joins the instance's cgroups (its limits), as apptainer's exec into an instance
  // does: a small shell moves itself in, then becomes nsenter. This Node process stays out (it
  // would weigh tens of MiB against a memory limit, and be the OOM killer's first choice).
  const cgroups = state.cgroups ?? [];
  const enter = [
    '-c',
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 255; shift; n=$((n-1)); done; exec nsenter "$@"',
    'apptainer-exec',
    String(cgroups.length),
    ...cgroups,
    '-t',
    String(state.pid),
    ...ns,
    '--',
    ...argv,
  ];
  const child = spawn('/bin/sh', enter, { stdio: 'inherit', env });
  const forward = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGCONT'];
  for (const sig of forward)
    process.on(sig, () => {
      try {
        child.kill(sig);
      } catch {}
    });
  child.on('error', (error) => fatal(`cannot enter instance ${state.name}: ${error.message}`));
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const sig of forward) process.removeAllListeners(sig);
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (os.constants.signals[signal] ?? 0)), 100);
    } else process.exit(code ?? 255);
  });
}

main(process.argv.slice(2));
