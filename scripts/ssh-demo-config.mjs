#!/usr/bin/env node
/**
 * Print the ssh backend config that reaches the private test sshd started by
 * scripts/provision-sshd.sh (as its first test user, with its key), for
 * `npm run demo -- --backend ssh --config-file ssh.json`. Reads <repo>/.tmp/sshd/state.json, or
 * $AGENTBOX_SSHD_DIR/state.json. The key is named by its path, never copied.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.env.AGENTBOX_SSHD_DIR ?? fileURLToPath(new URL('../.tmp/sshd', import.meta.url));
let state;
try {
  state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
} catch (error) {
  console.error(
    `ssh-demo-config: no test sshd state in ${dir} (${error.code ?? error.message}); ` +
      'start one with `sudo bash scripts/provision-sshd.sh`',
  );
  process.exit(1);
}
const config = {
  host: state.host,
  port: state.port,
  user: state.users[0],
  auth: { type: 'privateKey', path: state.privateKeyFile },
  knownHostsFile: state.knownHostsFile,
};
console.log(JSON.stringify(config, null, 2));
