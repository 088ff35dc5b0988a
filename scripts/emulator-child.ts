/**
 * An emulator in a child process that a fault test can SIGKILL and start again on the same port:
 * what a crashed and restarted provider API looks like to a client. A killed emulator cannot
 * remove its containers and snapshot images; `removeInstance` does it afterwards, by the
 * instance label the emulator puts on everything it makes (its own objects, nothing else).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const INSTANCE_LABEL = 'io.agentbox.emulator.instance';

export interface EmulatorChild<T> {
  /** What the child printed when it listened (url, credentials, instance). */
  readonly info: T & { url: string; instance: string };
  /** SIGKILL: the emulator dies without cleaning anything up. */
  kill(): Promise<void>;
  /** SIGTERM: the emulator closes and removes what it made. */
  stop(): Promise<void>;
}

/** Start `script` (a fixture taking `args`) under tsx and wait for its JSON line. */
export async function startEmulatorChild<T>(script: string, args: string[]): Promise<EmulatorChild<T>> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: dirname(script),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) resolve(text.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${code} before it listened`)));
  });
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    info: JSON.parse(line) as T & { url: string; instance: string },
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}

/** Remove the containers and images of a killed emulator instance. */
export async function removeInstance(instance: string): Promise<void> {
  const filter = `label=${INSTANCE_LABEL}=${instance}`;
  const containers = (await run('docker', ['ps', '-aq', '--filter', filter])).stdout
    .split('\n')
    .filter(Boolean);
  if (containers.length > 0) await run('docker', ['rm', '-f', '-v', ...containers]);
  const images = (await run('docker', ['images', '-q', '--filter', filter])).stdout
    .split('\n')
    .filter(Boolean);
  if (images.length > 0) await run('docker', ['rmi', '-f', ...new Set(images)]);
}

/** The port of an emulator URL such as http://127.0.0.1:41234. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}
