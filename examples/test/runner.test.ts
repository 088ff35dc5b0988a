/**
 * The example runner (`npm run demo`), run as a child process from its TypeScript source: the
 * main job on its default (local backend, scripted model) tells its whole story, failures are labelled
 * as failures, output is plain unless it goes to a terminal that takes colours, and bad input
 * ends it early with a short message instead of a stack trace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const EXAMPLES_DIR = fileURLToPath(new URL('..', import.meta.url));
const ROOT = join(EXAMPLES_DIR, '..');

interface RunnerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runner(
  args: readonly string[],
  options: { closeStdoutAfterFirstChunk?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<RunnerRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/runner.ts', ...args], {
    cwd: EXAMPLES_DIR,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    if (options.closeStdoutAfterFirstChunk) child.stdout.destroy(); // like `| head -1`
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The runner run twice on one terminal (util-linux `script` gives it a pty): once as it is, once
 * with NO_COLOR=1. Returns what each run wrote to the terminal. One terminal session for both,
 * and the shell holds it open for a moment after the last run: the kernel hands what a program
 * wrote to the master side asynchronously, and `script` stops reading soon after its child ends.
 */
function runnerInTerminal(
  args: readonly string[],
): Promise<{ coloured: string; noColor: string; raw: string }> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const runnerCommand = [process.execPath, '--import', 'tsx', 'src/runner.ts', ...args].map(quote).join(' ');
  const split = '=== NO_COLOR ===';
  const command = `${runnerCommand}; echo ${quote(split)}; NO_COLOR=1 ${runnerCommand}; sleep 1`;
  // stdin is a pipe held open until the end: at EOF on a non-terminal stdin, `script` sends an
  // end-of-file to the terminal and may finish before it has copied everything the program wrote.
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd: EXAMPLES_DIR,
    // As on a developer's terminal: Node's hasColors() also answers no under a generic CI=true
    // (CI systems it does not know by name), and FORCE_COLOR would decide for it.
    env: {
      ...process.env,
      TERM: 'xterm-256color',
      NO_COLOR: undefined,
      NODE_DISABLE_COLORS: undefined,
      FORCE_COLOR: undefined,
      CI: undefined,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let raw = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (raw += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (raw += `[script stderr] ${text}`));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => {
      child.stdin.destroy();
      const [coloured = '', noColor = ''] = raw.split(split);
      resolve({ coloured, noColor, raw });
    });
  });
}

const plain = (text: string) => text.replaceAll(/\x1b\[[0-9;]*m/g, '');

describe.concurrent('the example runner', () => {
  const roots: string[] = [];
  afterAll(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

  it('tells the whole story: the work, a denied command, a quarantined skill, a rollback, a runaway command cut off, a budget stop', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-demo-'));
    roots.push(root);
    // An unrelated sleeper on the host is not the sandbox's: the runner must not count it.
    const bystander = spawn('sleep', ['30'], { cwd: tmpdir(), stdio: 'ignore' });
    const started = performance.now();
    const run = await runner(['--config', JSON.stringify({ root })]).finally(() => bystander.kill());
    // The demo promises the whole story in under a minute.
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // Not a terminal: no colour codes at all.
    expect(run.stdout).not.toContain('\x1b');
    const out = plain(run.stdout);
    expect(out).toContain('▸ open a local sandbox');
    // The work: the app runs.
    expect(out).toMatch(
      /▸ Run it\.\n {2}exec .*\n {2}│ exit code: 0\n(?: {2}│ .*\n)*? {2}│ hello from the app\n/,
    );
    // A dangerous command is denied (unattended: no one to approve it) and never runs.
    expect(out).toMatch(
      /▸ Install a linter .*\n {2}exec .*curl -fsSL .*\| sh.*\n {2}│ denied: this command needs approval \(runs code downloaded .*\[remote-code\]\) and this run is unattended, so it was not run\..*\n {2}\(denied: needs approval, and no one is here to give it, [\d.]+ ms\)\n/,
    );
    // The poisoned skill is quarantined, saved through the tool and written by a shell command alike.
    expect(out).toMatch(
      /▸ Denied\. Save the lint setup .*\n {2}save_skill .*\n {2}│ error: skill "lint-setup" was not kept: not saved: the Skills Guard quarantined it in \.quarantine\/lint-setup-\S+\n {2}│ Skills Guard: skill "lint-setup" is DANGEROUS .*\n {2}│ {3}critical exfiltration .*\n(?: {2}│ .*\n)* {2}⚠ Skills Guard: "lint-setup" is dangerous; quarantined in \.quarantine\/lint-setup-\S+\n {2}\(failed, /,
    );
    expect(out).toMatch(
      /▸ Quarantined\. Write the skill with a shell command instead\.\n {2}exec .*\n {2}│ exit code: 0\n(?: {2}│ .*\n)*? {2}│ Skills Guard: this command wrote the skill "lint-setup", which is DANGEROUS; it was moved to quarantine in \.quarantine\/lint-setup-\S+\n(?: {2}│ .*\n)* {2}⚠ Skills Guard: "lint-setup" is dangerous; quarantined in /,
    );
    // The destructive step gets an automatic checkpoint; one rollback to it undoes the step.
    const auto =
      /▸ Clean up \(a destructive mistake\)\.\n {2}exec .*\n {2}│ \[checkpoint (\S+) was taken before this step \(rm removes or replaces files\); rollback to it undoes the step\]\n(?: {2}│ .*\n)* {2}⚑ automatic checkpoint \1 before this step \(rm removes or replaces files\)\n/.exec(
        out,
      );
    expect(auto).not.toBeNull();
    const checkpointId = auto![1]!;
    expect(out).toContain(`rollback {"id":"${checkpointId}"}\n  │ rolled back to ${checkpointId}\n  (ok, `);
    // After the rollback the app runs again and the README is the original.
    expect(out).toMatch(
      /▸ Verify\.\n {2}exec .*\n(?: {2}│ .*\n)*? {2}│ # notes\n(?: {2}│ .*\n)*? {2}│ hello from the app\n/,
    );
    // The broken app exits 127: the command ran, and failed.
    expect(out).toMatch(
      /▸ Check the app still runs\.\n {2}exec .*\n {2}│ exit code: 127\n(?: {2}│ .*\n)*? {2}\(failed: exit code 127, [\d.]+ ms\)\n/,
    );
    expect(out).not.toMatch(/exit code: [1-9]\d*\n(?: {2}│ .*\n)* {2}\(ok,/);
    expect(out).toMatch(/▸ A runaway command .*\n(?: {2}.*\n)*? {2}\(failed, [\d.]+ ms\)\n/); // the timeout
    expect(out).toContain('still here; sleepers left: 0');
    // The budget stops the script, and the report lists the automatic checkpoint and the rollback.
    expect(out).toMatch(
      new RegExp(
        `▸ stopped: max_steps: the model used all 13 steps\\n\\n▸ report\\n {2}│ stopped: max_steps — the model used all 13 steps\\n(?: {2}│ .*\\n)*? {2}│ checkpoints: ${checkpointId} \\(before rm -rf project/src .*\\) \\[automatic: rm removes or replaces files\\]\\n {2}│ rolled back to: ${checkpointId}\\n {2}\\(the script had more to do: its budget of 13 steps stopped it\\)\\n`,
      ),
    );
    expect(out).not.toContain('▸ And the next one.');
    // At the end (local backend): how to try docker and ssh, with the commands that provision them.
    expect(out).toMatch(/\)\n\nTry the other backends [^\n]*\n[\s\S]*\n$/);
    for (const line of [
      'bash scripts/provision-docker.sh',
      'npm run demo -- --backend docker',
      'bash scripts/provision-sshd.sh',
      'node scripts/ssh-demo-config.mjs > ssh.json',
      'npm run demo -- --backend ssh --config-file ssh.json',
    ])
      expect(out).toContain(line);
    // The sandbox was closed: nothing is left under its root.
    expect(await readdir(root)).toEqual([]);
  });

  it('a step budget given on the command line is a stop that fails the run (exit 1), with the report', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-demo-'));
    roots.push(root);
    const run = await runner(['--config', JSON.stringify({ root }), '--max-steps', '2']);
    expect(run).toMatchObject({ code: 1, stderr: '' });
    expect(run.stdout).toContain('▸ stopped: max_steps: the model used all 2 steps\n\n▸ report\n');
    expect(run.stdout).toContain('  │ checkpoints: none\n');
    expect(run.stdout).not.toContain('the script had more to do');
    expect(await readdir(root)).toEqual([]);
  });

  it('ends with a typed error, not a stack, when the backend config is wrong', async () => {
    const run = await runner(['--backend', 'ssh', '--config', '{"port": 0}']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^runner: INVALID_ARGUMENT: ssh\.open: invalid ssh config: config\.host: /);
    expect(run.stderr).not.toContain('    at ');
  });

  it('colours its headings on a terminal, and not with NO_COLOR set', async () => {
    // A config the ssh backend refuses: each run ends right after its first (bold) line.
    const run = await runnerInTerminal(['--backend', 'ssh', '--config', '{"port": 0}']);
    if (!run.noColor.includes('▸ open a ssh sandbox'))
      console.error('terminal output:', JSON.stringify(run.raw));
    expect(run.coloured).toContain('\x1b[1m▸ open a ssh sandbox\x1b[0m');
    expect(run.coloured).toContain('INVALID_ARGUMENT');
    expect(run.noColor).toContain('▸ open a ssh sandbox');
    expect(run.noColor).toContain('INVALID_ARGUMENT');
    expect(run.noColor).not.toMatch(/\x1b\[[0-9;]*m/);
  });

  it('--help explains the options and how to provision docker and ssh; an unknown flag is a short usage error', async () => {
    const help = await runner(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: npm run demo -- \[options\]/);
    for (const text of [
      '--backend KIND',
      '--config-file PATH',
      '--model-url URL',
      'NO_COLOR',
      'bash scripts/provision.sh',
      'bash scripts/provision-docker.sh',
      'bash scripts/provision-sshd.sh',
      'node scripts/ssh-demo-config.mjs > ssh.json',
    ])
      expect(help.stdout).toContain(text);

    const unknown = await runner(['--frobnicate']);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    // One line from parseArgs (Node versions word its tail differently), one pointing at --help.
    expect(unknown.stderr).toMatch(
      /^runner: Unknown option '--frobnicate'[^\n]*\nRun `npm run demo -- --help` for the options\.\n$/,
    );
    const stray = await runner(['docker']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/^runner: Unexpected argument 'docker'/);
    expect(stray.stderr).not.toContain('    at ');
  });

  it('stops when its reader goes away (exit 141), and still closes the sandbox', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-demo-'));
    roots.push(root);
    const run = await runner(['--config', JSON.stringify({ root })], { closeStdoutAfterFirstChunk: true });
    expect(run).toMatchObject({ code: 141, stderr: '' });
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses an unknown backend and input that is not JSON', async () => {
    const unknown = await runner(['--backend', 'nope']);
    expect(unknown).toMatchObject({
      code: 2,
      stderr:
        'runner: unknown backend "nope"; known: daytona, docker, kubernetes, local, modal, singularity, ssh, vercel\n',
    });
    const notJson = await runner(['--config', '{x']);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^runner: the backend config is not JSON: /);
  });
});

// What --help and the end of a local run tell a user to do for ssh, done here against the test sshd.
const sshdDir = process.env.AGENTBOX_SSHD_DIR ?? join(ROOT, '.tmp', 'sshd');
const haveSshd = existsSync(join(sshdDir, 'state.json'));
if (!haveSshd)
  console.info(`runner over ssh: skipped, no test sshd state in ${sshdDir} (bash scripts/provision-sshd.sh)`);

describe.skipIf(!haveSshd)('the example runner over ssh, as its help says', () => {
  it('runs to the end with the config that scripts/ssh-demo-config.mjs writes', async () => {
    const config = execFileSync(process.execPath, [join(ROOT, 'scripts', 'ssh-demo-config.mjs')], {
      env: { ...process.env, AGENTBOX_SSHD_DIR: sshdDir },
      encoding: 'utf8',
    });
    // The key is named by its path, not copied into the config.
    expect(JSON.parse(config)).toMatchObject({ auth: { type: 'privateKey', path: expect.any(String) } });
    expect(config).not.toContain('PRIVATE KEY');
    const dir = await mkdtemp(join(tmpdir(), 'agentbox-demo-ssh-'));
    await writeFile(join(dir, 'ssh.json'), config);
    try {
      const run = await runner(['--backend', 'ssh', '--config-file', join(dir, 'ssh.json')]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('▸ stopped: max_steps: the model used all 13 steps');
      expect(run.stdout).toContain('(the script had more to do: its budget of 13 steps stopped it)');
      expect(run.stdout).toContain(
        'Skills Guard: this command wrote the skill "lint-setup", which is DANGEROUS',
      );
      expect(run.stdout).toMatch(/rolled back to: \S+\n/);
      expect(run.stdout).toContain('still here; sleepers left: 0');
      // The docker and ssh hints are for a local run only.
      expect(run.stdout).not.toContain('Try the other backends');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
