/** What makes a path or a destination interesting to the guard: secrets, broad trees, autostart files, collectors. */

const HOME = String.raw`(?:~[a-z_][\w-]*|~|\$\{?HOME\}?|/root|/home/[^/\s]+|/Users/[^/\s]+)`;

/** Files whose contents are credentials (private keys, cloud and registry tokens, password stores, wallets). */
const SECRET_PATH = new RegExp(
  [
    String.raw`\.ssh/(?:id_[a-z0-9]+(?!\.pub)\b|[^/\s]*\.pem|[^/\s]*\.key|identity)`,
    String.raw`\.ssh/?(?:\*|$)`,
    String.raw`\.aws/(?:credentials|config)|\.aws/?$`,
    String.raw`\.config/gcloud\b|application_default_credentials\.json|\.azure/|\.kube/config`,
    String.raw`\.docker/config\.json|\.netrc\b|\.git-credentials|\.npmrc\b|\.pypirc\b|\.vault-token`,
    String.raw`\.gnupg\b|\.password-store|\.config/gh/hosts\.yml|credentials\.tfrc\.json`,
    String.raw`/etc/shadow|/etc/gshadow|/proc/(?:self|\d+|\*|\$\$)/environ`,
    String.raw`\.(?:bash|zsh|sh)_history|\.psql_history|\.mysql_history`,
    String.raw`Login Data|logins\.json|key[34]\.db|cookies\.sqlite|Library/Keychains`,
    String.raw`wallet\.dat|\.electrum/|\.ethereum/keystore|\.config/solana/id\.json|\.bitcoin/`,
  ].join('|'),
);

/** Secrets mounted for the agent on purpose: reading them is normal, sending them away is not. */
const MOUNTED_SECRET = /^(?:\/run\/secrets\/|\/var\/run\/secrets\/|\$\{?CREDENTIALS_DIRECTORY\}?)/;

export function isSecretPath(path: string): boolean {
  return SECRET_PATH.test(path);
}

export function isMountedSecret(path: string): boolean {
  return MOUNTED_SECRET.test(path);
}

/** A dotenv file: usually secrets for this project. */
export function isDotEnv(path: string): boolean {
  return /(?:^|\/)\.env(?:\.[\w-]+)?$/.test(path) && !/\.env\.(?:example|sample|template)$/.test(path);
}

const SYSTEM_TOP = new Set([
  'bin',
  'boot',
  'dev',
  'etc',
  'home',
  'lib',
  'lib32',
  'lib64',
  'opt',
  'proc',
  'root',
  'sbin',
  'srv',
  'sys',
  'usr',
  'var',
  'mnt',
  'media',
  'tmp',
  'Users',
  'System',
  'Library',
  'Applications',
]);

/**
 * A path whose recursive removal (or exposure) is a catastrophe: the root, a home, the working
 * directory itself, a top-level system folder or one level below it, a top-level folder of a home.
 */
export function isBroadPath(raw: string): boolean {
  let path = raw.trim();
  if (path === '') return false;
  path = path.replace(/(?:\/\.?)+$/, '').replace(/\/\*$/, '') || '/';
  if (path === '/' || path === '*' || path === '.' || path === '..' || path === '.*') return true;
  if (/^(?:\.\.\/)+\.\.$|^(?:\.\.\/)+\*$/.test(path)) return true;
  const home = new RegExp(`^${HOME}$`);
  if (home.test(path)) return true;
  const underHome = new RegExp(`^${HOME}/([^/]+)$`);
  if (underHome.test(path)) return true;
  if (path.startsWith('/')) {
    const parts = path.split('/').filter(Boolean);
    if (parts.length === 1) return true;
    if (parts.length === 2 && SYSTEM_TOP.has(parts[0]!) && parts[0] !== 'tmp' && parts[0] !== 'home')
      return true;
    if (parts.length === 2 && parts[0] === 'home') return true;
  }
  return false;
}

/** Whether a word names a home folder or something under it (for archives and uploads). */
export function isHomePath(raw: string): boolean {
  return new RegExp(`^${HOME}(?:/|$)`).test(raw.trim());
}

/** Files that run automatically later: shell start-up files, cron, services, ssh keys and hooks. */
const PERSISTENCE_PATH = new RegExp(
  [
    String.raw`(?:^|/)\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|kshrc|cshrc|tcshrc)$`,
    String.raw`\.config/fish/config\.fish$|^/etc/(?:profile|bash\.bashrc|zsh/|environment$|ld\.so\.preload)`,
    String.raw`authorized_keys2?$|\.ssh/rc$|\.ssh/config$|^/etc/ssh/sshd_config`,
    '^/etc/cron|^/var/spool/cron|^/etc/crontab|^/etc/anacrontab',
    String.raw`^/etc/systemd/|\.config/systemd/user/|^/lib/systemd/|^/usr/lib/systemd/|^/etc/init\.d/|^/etc/rc\.local`,
    String.raw`Library/Launch(?:Agents|Daemons)/|^/etc/sudoers|\.config/autostart/|^/etc/xdg/autostart/`,
    String.raw`\.git/hooks/|^/etc/passwd$|^/etc/(?:udev|modules-load\.d)/`,
  ].join('|'),
);

export function isPersistencePath(path: string): boolean {
  return PERSISTENCE_PATH.test(path.trim().replace(/^["']|["']$/g, ''));
}

/** Devices whose overwrite destroys a disk or the running system's memory. */
export function isBlockDevice(path: string): boolean {
  return /^\/dev\/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|md\d|dm-\d|mapper\/|mem$|kmem$|port$|root$)/.test(
    path,
  );
}

const COLLECTORS =
  /(?:webhook\.site|requestbin|pipedream\.net|ngrok(?:-free)?\.(?:io|app|dev)|burpcollaborator|oast\.(?:fun|me|pro|live|site|online)|interact\.sh|pastebin\.com|transfer\.sh|hastebin|0x0\.st|termbin\.com|discord(?:app)?\.com\/api\/webhooks|api\.telegram\.org\/bot|trycloudflare\.com|beeceptor|requestcatcher|canarytokens|serveo\.net)/i;

/** A destination typical of exfiltration: a bare public IP, a paste or webhook collector, a quick tunnel. */
export function isSuspiciousDestination(text: string): boolean {
  if (COLLECTORS.test(text)) return true;
  const ip = /(?:^|[/@:\s])(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?=[:/\s]|$)/.exec(text);
  if (!ip) return false;
  const [a, b] = [Number(ip[1]), Number(ip[2])];
  const privateRange = a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31);
  return !privateRange;
}

/** Environment variable names that hold secrets by convention. */
export const SECRET_ENV_VAR =
  /\$\{?([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_KEY|ACCESS_KEY|CREDENTIALS?)[A-Z0-9_]*)\}?/;
