/**
 * The SSH connection cut in the middle of an exec, an upload, a checkpoint and a rollback (issue
 * 18). A TCP proxy this file owns sits between the backend and the test sshd; the test resets
 * every connection through it at the chosen moment. Each cut must end in a typed error within a
 * bound (never a hang), leave every earlier checkpoint verifiable, and let the next call work on a
 * new connection; a rollback cut short must leave the record the next re-attach finishes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AgentboxError, openSandbox, type SandboxBackend } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/fault-proxy.ts';
import '../src/index.js';
import type { SshSandbox } from '../src/index.js';
import { sshConfig, sshd } from './sshd.ts';

/** How long a cut may take to surface as an error: far below any wait that would count as a hang. */
const BOUND_MS = 10_000;
/** Files in the tree whose checkpoint and rollback get cut: enough that both take a while. */
const FILES = 1500;

let proxy: FaultProxy;
let sandbox: SshSandbox;
const id = `faults-${process.pid}-${Date.now().toString(36)}`;

/** The sandbox through the proxy, kept on close so that it can be re-attached by id. */
const open = (keep = true) =>
  openSandbox({
    backend: 'ssh',
    id,
    config: sshConfig({
      port: 'port' in proxy.address ? proxy.address.port : 0,
      // The proxy's port is not in known_hosts: pin the test host's key instead.
      hostKeyFingerprint: sshd().hostKeys.ed25519.fingerprint,
      isolation: 'none',
      keep,
    }),
  }) as Promise<SshSandbox>;

beforeAll(async () => {
  proxy = await startFaultProxy({ port: sshd().port });
  sandbox = await open();
});

afterAll(async () => {
  await sandbox?.close();
  // The last handle is not kept: the workspace and its store go.
  if (proxy) await (await open(false)).close();
  await proxy?.stop();
});

/** The error a promise rejects with, and how long that took (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<{ error: AgentboxError; ms: number }> {
  const started = Date.now();
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, 'expected a rejection, but the call succeeded').toBeDefined();
  expect(outcome).toBeInstanceOf(AgentboxError);
  return { error: outcome as AgentboxError, ms: Date.now() - started };
}

/** Every file under `dir` (the workspace, read on this machine: the test host is local) → its hash. */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const path = join(dir, name);
    try {
      files[name] = createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch {
      // a directory
    }
  }
  return files;
}

/** Write `FILES` files whose content names `state`, in one command. */
async function writeState(sb: SandboxBackend, state: string): Promise<void> {
  const r = await sb.exec([
    'sh',
    '-c',
    'mkdir -p d && i=0; while [ $i -lt "$2" ]; do echo "$1 $i" > d/f$i; i=$((i+1)); done',
    'sh',
    state,
    String(FILES),
  ]);
  expect(r.exitCode).toBe(0);
}

/** Resolves when `path` exists (polled fast), or rejects after `ms`. */
async function appears(path: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('the SSH connection cut mid-operation (a proxy between the backend and sshd)', () => {
  it('an exec: SANDBOX_UNAVAILABLE within the bound, and the next exec runs on a new connection', async () => {
    const handle = sandbox.spawn(['sh', '-c', 'echo started; exec sleep 30']);
    for await (const chunk of handle.stdout) if (Buffer.from(chunk).toString().includes('started')) break;
    const before = proxy.accepted;
    proxy.cut();
    const { error, ms } = await failure(handle.wait());
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(ms).toBeLessThan(BOUND_MS);
    expect((await sandbox.exec('echo back')).stdout).toBe('back\n');
    expect(proxy.accepted).toBeGreaterThan(before);
  });

  it('an upload: SANDBOX_UNAVAILABLE within the bound, and the next upload works', async () => {
    const chunk = new Uint8Array(256 * 1024).fill(7);
    async function* upload() {
      for (let i = 0; i < 400; i++) {
        if (i === 8) proxy.cut();
        yield chunk;
      }
    }
    const { error, ms } = await failure(sandbox.writeFile('big.bin', upload()));
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(ms).toBeLessThan(BOUND_MS);
    await sandbox.writeFile('small.txt', 'after the cut');
    expect(await sandbox.readTextFile('small.txt')).toBe('after the cut');
    await sandbox.exec('rm -f big.bin small.txt');
  });

  it('a checkpoint: a typed error within the bound, the earlier checkpoint intact, the cut one whole or absent', async () => {
    await writeState(sandbox, 'A');
    const started = Date.now();
    const a = await sandbox.checkpoint({ label: 'A' });
    const fullMs = Date.now() - started;
    const treeA = tree(sandbox.workdir);
    // Every file changes, so checkpoint B hashes and stores all of them again: cut it halfway.
    let cut: AgentboxError | undefined;
    for (let attempt = 0; attempt < 4 && !cut; attempt++) {
      await writeState(sandbox, `B${attempt}`);
      const pending = sandbox.checkpoint({ label: `B${attempt}` });
      await new Promise((resolve) => setTimeout(resolve, Math.max(5, fullMs / 2 ** (attempt + 1))));
      proxy.cut();
      const outcome = await pending.then(
        () => undefined,
        (error: unknown) => error as AgentboxError,
      );
      if (outcome) {
        expect(outcome).toBeInstanceOf(AgentboxError);
        expect(outcome.code).toBe('SANDBOX_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(BOUND_MS * 4 + fullMs * 4);
        cut = outcome;
      }
      console.log(
        `ssh checkpoint cut, attempt ${attempt}: ${outcome ? outcome.code : 'finished first'} (a full checkpoint took ${fullMs} ms)`,
      );
    }
    expect(cut, 'no cut landed inside a checkpoint').toBeDefined();

    const report = await sandbox.verifyCheckpoints();
    expect(report).toMatchObject({ ok: true, damagedObjects: [], damagedManifests: [] });
    const listed = await sandbox.listCheckpoints();
    expect(listed.map((c) => c.id)).toContain(a.id);
    for (const info of listed) expect(report.intact).toContain(info.id);
    await sandbox.rollback(a.id);
    expect(tree(sandbox.workdir)).toEqual(treeA);
  });

  // The cut rollback's script may still be running on the host when the re-attach starts its own:
  // the store's listing waits for it (the script names its shell in the store), or the two would
  // interleave (seen in CI before that wait: 1497 of 1500 entries).
  it('a rollback: a typed error within the bound; the record it leaves makes the handle refuse work and the next re-attach finish it', async () => {
    const a = (await sandbox.listCheckpoints()).find((c) => c.label === 'A')!;
    const treeA = tree(sandbox.workdir);
    await writeState(sandbox, 'X');
    const record = join(dirname(sandbox.workdir), 'checkpoints', 'rollback-pending');
    expect(existsSync(record)).toBe(false);

    const pending = sandbox.rollback(a.id);
    pending.catch(() => {});
    // The restore script writes the record before its first change: cut the moment it is there.
    await appears(record, BOUND_MS);
    proxy.cut();
    const { error, ms } = await failure(pending);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(ms).toBeLessThan(BOUND_MS);

    const owner = join(dirname(record), 'restore-owner');
    console.log(
      `ssh rollback cut: record ${existsSync(record) ? 'left' : 'gone (the host finished the script)'}, ` +
        `the cut script ${existsSync(owner) ? 'still named as running' : 'ended'}`,
    );
    if (existsSync(record)) {
      // The script did not get to its end: the handle knows the tree may be a mix, and says so.
      await expect(sandbox.exec('true')).rejects.toMatchObject({
        code: 'ROLLBACK_INCOMPLETE',
        checkpointId: a.id,
      });
      await expect(sandbox.readFile('d/f0')).rejects.toMatchObject({ code: 'ROLLBACK_INCOMPLETE' });
    } else {
      // The host finished the script after the cut (the record went with its last line).
      expect(tree(sandbox.workdir)).toEqual(treeA);
    }
    // A new process would find the same: re-attach by id finishes the rollback.
    await sandbox.close();
    sandbox = await open();
    expect(existsSync(record)).toBe(false);
    expect(tree(sandbox.workdir)).toEqual(treeA);
    expect((await sandbox.exec('cat d/f0')).stdout).toBe('A 0\n');
    expect(await sandbox.verifyCheckpoints()).toMatchObject({ ok: true, interruptedRollback: undefined });
  });

  it('the proxy stopped (the host unreachable): a typed error within the bound, and work resumes when it is back', async () => {
    await proxy.stop();
    const { error, ms } = await failure(sandbox.exec('true'));
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(ms).toBeLessThan(BOUND_MS);
    await proxy.restart();
    expect((await sandbox.exec('echo up')).stdout).toBe('up\n');
  });
});
