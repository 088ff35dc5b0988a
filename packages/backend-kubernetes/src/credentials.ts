/**
 * The policy's credentials as a Secret: the library reads each host file (or every file under a
 * host folder) at open, puts them in one Secret, and the pod mounts each credential read-only at
 * its target through a subPath of one secret volume. The sandbox user reads them through the
 * pod's fsGroup; nothing in the pod can write them.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InvalidArgumentError, type ParsedPolicy } from '@agentbox/core';

/** The API server refuses a Secret whose data is larger than this. */
export const SECRET_MAX_BYTES = 1024 * 1024;
/** Readable by root and the pod's fsGroup (the sandbox user's group), by no one else. */
export const CREDENTIAL_MODE = 0o440;

export interface CredentialMounts {
  /** The Secret's `data`: base64 values by key. */
  data: Record<string, string>;
  /** The secret volume's items: key to path inside the volume (`<n>` or `<n>/<relative path>`). */
  items: { key: string; path: string }[];
  /** One read-only mount per credential: its target, and its path inside the volume. */
  mounts: { mountPath: string; subPath: string }[];
}

/** Read the policy's credentials from this machine; undefined when it asks for none. */
export async function readCredentials(
  policy: ParsedPolicy,
  context: { backend: string; sandboxId: string; operation: string },
): Promise<CredentialMounts | undefined> {
  const credentials = policy.credentials ?? [];
  if (credentials.length === 0) return undefined;
  const out: CredentialMounts = { data: {}, items: [], mounts: [] };
  let bytes = 0;
  const refuse = (message: string) =>
    new InvalidArgumentError(message, { ...context, issues: [`policy.credentials: ${message}`] });
  for (const [n, credential] of credentials.entries()) {
    const info = await stat(credential.source).catch(() => undefined);
    if (!info) throw refuse(`${credential.source} cannot be read`);
    const files = info.isDirectory()
      ? await filesUnder(credential.source)
      : info.isFile()
        ? [credential.source]
        : undefined;
    if (!files) throw refuse(`${credential.source} is neither a file nor a folder`);
    if (files.length === 0)
      throw refuse(`${credential.source} is an empty folder (a Secret cannot hold one)`);
    for (const [f, file] of files.entries()) {
      const content = await readFile(file).catch(() => undefined);
      if (!content) throw refuse(`${file} cannot be read`);
      bytes += content.length;
      const key = `c${n}.${f}`;
      out.data[key] = content.toString('base64');
      out.items.push({
        key,
        path: info.isDirectory() ? `${n}/${relative(credential.source, file)}` : `${n}`,
      });
    }
    out.mounts.push({ mountPath: credential.target, subPath: `${n}` });
  }
  if (bytes > SECRET_MAX_BYTES)
    throw refuse(`the credentials hold ${bytes} bytes; a Secret holds at most ${SECRET_MAX_BYTES}`);
  return out;
}

/** Every regular file under a folder (symbolic links followed), sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    const path = join(dir, entry);
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) out.push(...(await filesUnder(path)));
    else if (info?.isFile()) out.push(path);
  }
  return out;
}
