/**
 * What to check when an SSH server refuses every public key given. The client only learns "refused";
 * a common real reason is on the server: sshd could not read the user's authorized_keys (a parent
 * directory its user cannot enter, modes StrictModes rejects), which only the sshd log says.
 */
import type { SshEndpoint } from './config.js';

/** Whether any configured method offers a public key (a key file, an inline key, or an agent). */
export function offersPublicKey(ep: SshEndpoint): boolean {
  const methods = Array.isArray(ep.auth) ? ep.auth : [ep.auth];
  return methods.some((auth) => auth.type === 'privateKey' || auth.type === 'agent');
}

/** The likely reasons a key that is authorized is still refused, and where to look. */
export function refusedKeyHint(user: string): string {
  return (
    `If the key is in ${user}'s authorized_keys there, sshd may be unable to read that file: it opens ` +
    `it as ${user}, so every directory above it must be searchable by ${user} (one made by mktemp -d is ` +
    `0700, so only its owner may enter it), and with StrictModes yes (the default) the file and its ` +
    `directories must be owned by ${user} or root and not writable by group or others. The sshd log ` +
    `names the reason ("Could not open user ... authorized keys", "bad ownership or modes"): ` +
    `journalctl -u ssh, /var/log/auth.log, or the file given to sshd -E.`
  );
}
