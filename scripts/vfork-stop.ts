/**
 * The vfork fixture shared by the freeze tests (core's stopProcesses, the ssh jail's freeze): a
 * small C program whose child stops itself between vfork and exec, so its parent sleeps in
 * vfork (state D) and never stops on a SIGSTOP while the child is held.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('./vfork-stop.c', import.meta.url));

/** Compile the fixture into `dir`; its path, or undefined (with the reason printed) without a C compiler. */
export function buildVforkStop(dir: string, who: string): string | undefined {
  const binary = join(dir, 'vfork-stop');
  try {
    execFileSync('cc', ['-O2', '-static', '-o', binary, source], { stdio: 'ignore' });
    return binary;
  } catch {
    console.info(`${who}: skipped: no C compiler (cc with a static libc) to build the vfork fixture`);
    return undefined;
  }
}
