/**
 * Why a file call failed, asked of the sandbox itself: Vercel's file API answers a failure with a
 * status whose meaning it does not document, so a short probe run as the same user names it.
 */
import type { AgentboxError } from '@agentbox/core';
import { type ErrorContext, FILE_SCRIPT_ERRNO, fromErrno } from '@agentbox/core/backend';
import type { Sandbox } from '@vercel/sandbox';
import { vercelFailure } from './client.js';

// $1 the path. Exit statuses as core's FILE_SCRIPT_ERRNO.
const READ_PROBE = [
  'f=$1',
  '[ -e "$f" ] || exit 3',
  '[ -d "$f" ] && exit 4',
  '[ -r "$f" ] || exit 5',
  'exit 0',
].join('\n');
const WRITE_PROBE = [
  'f=$1',
  '[ -d "$f" ] && exit 4',
  'd=$(dirname -- "$f")',
  'while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done',
  '[ -d "$d" ] || exit 7',
  'if [ -e "$f" ]; then [ -w "$f" ] || exit 5; else [ -w "$d" ] || exit 5; fi',
  'exit 0',
].join('\n');

/** The typed error for `path`, or undefined when the probe finds nothing wrong. */
export async function probeFile(
  sandbox: Sandbox,
  path: string,
  access: 'read' | 'write',
  context: ErrorContext,
): Promise<AgentboxError | undefined> {
  let probe: Awaited<ReturnType<Sandbox['runCommand']>>;
  try {
    probe = await sandbox.runCommand('sh', [
      '-c',
      access === 'read' ? READ_PROBE : WRITE_PROBE,
      'agentbox-probe',
      path,
    ]);
  } catch (error) {
    // The sandbox cannot run the probe (gone, unreachable): that is the answer, not "no such file".
    return vercelFailure(error, context);
  }
  const errno = FILE_SCRIPT_ERRNO[probe.exitCode];
  return errno ? fromErrno(errno, `${path}: ${errno}`, context) : undefined;
}
