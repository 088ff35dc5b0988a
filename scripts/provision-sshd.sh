#!/usr/bin/env bash
# Provision what the SSH backend's tests need, idempotently (run as root):
#   1. openssh-server (apt-get installs it when sshd is missing);
#   2. a state directory with host keys, client keys, a known_hosts file and an sshd_config;
#   3. non-root test users agentbox-a and agentbox-b (key and password login);
#   4. a private sshd on 127.0.0.1, on a free port, with its own config and pid file. The
#      machine's own sshd (if any) is never touched.
# The tests read everything from "$STATE_DIR/state.json". Re-running it while that sshd is alive
# changes nothing.
# Environment: AGENTBOX_SSHD_DIR (default <repo>/.tmp/sshd).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${AGENTBOX_SSHD_DIR:-$ROOT/.tmp/sshd}"
STATE="$STATE_DIR/state.json"
CONFIG="$STATE_DIR/sshd_config"
PID_FILE="$STATE_DIR/sshd.pid"
LOG_FILE="$STATE_DIR/sshd.log"
USERS=(agentbox-a agentbox-b)
KEY_PASSPHRASE='agentbox test passphrase'

say() { echo "provision-sshd: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# The sshd this script started, if it is still running with this state directory's config.
sshd_alive() {
  [ -s "$PID_FILE" ] && [ -s "$STATE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONFIG"
}

if sshd_alive; then
  say "sshd already running (pid $(cat "$PID_FILE")); state in $STATE"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "the test sshd is not running; run this script as root to start it"

# --- 1. openssh-server (and ss, ps, which the tests use) ------------------------------------
missing=()
{ [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1; } ||
  missing+=(openssh-server openssh-client)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v ps >/dev/null 2>&1 || missing+=(procps)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available; install them by hand"
  say "apt-get update && apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is still missing after installing openssh-server"
# Privilege separation directory, normally created by the distribution's service unit.
mkdir -p /run/sshd
chmod 0755 /run/sshd

# --- 2. keys and state directory ------------------------------------------------------------
mkdir -p "$STATE_DIR/authorized_keys"
chmod 0755 "$STATE_DIR"
[ -f "$STATE_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C agentbox-test-host -f "$STATE_DIR/ssh_host_ed25519_key"
[ -f "$STATE_DIR/ssh_host_rsa_key" ] || ssh-keygen -q -t rsa -b 3072 -N '' -C agentbox-test-host -f "$STATE_DIR/ssh_host_rsa_key"
[ -f "$STATE_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C agentbox-test-client -f "$STATE_DIR/id_ed25519"
[ -f "$STATE_DIR/id_ed25519_passphrase" ] ||
  ssh-keygen -q -t ed25519 -N "$KEY_PASSPHRASE" -C agentbox-test-client-passphrase -f "$STATE_DIR/id_ed25519_passphrase"
# A key no user authorizes, for the "wrong key" case.
[ -f "$STATE_DIR/id_ed25519_unauthorized" ] ||
  ssh-keygen -q -t ed25519 -N '' -C agentbox-test-unauthorized -f "$STATE_DIR/id_ed25519_unauthorized"
chmod 0600 "$STATE_DIR"/ssh_host_*_key "$STATE_DIR"/id_ed25519*
chmod 0644 "$STATE_DIR"/*.pub
# The users are machine-wide, so their password is too: every clone's sshd shares it.
PASSWORD_FILE=/var/lib/agentbox-test-sshd/password
if [ ! -s "$PASSWORD_FILE" ]; then
  mkdir -p "$(dirname "$PASSWORD_FILE")"
  chmod 0700 "$(dirname "$PASSWORD_FILE")"
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$PASSWORD_FILE")
fi
PASSWORD="$(cat "$PASSWORD_FILE")"

# --- 3. users --------------------------------------------------------------------------------
for user in "${USERS[@]}"; do
  if ! id "$user" >/dev/null 2>&1; then
    say "creating user $user"
    useradd --create-home --shell /bin/bash "$user"
  fi
  mkdir -p "/home/$user"
  chown "$user:" "/home/$user"
  chmod 0750 "/home/$user"
  echo "$user:$PASSWORD" | chpasswd
  cat "$STATE_DIR/id_ed25519.pub" "$STATE_DIR/id_ed25519_passphrase.pub" >"$STATE_DIR/authorized_keys/$user"
  chmod 0644 "$STATE_DIR/authorized_keys/$user"
  # sshd reads the file as the user: a directory above it that the user cannot enter (a checkout
  # under a 0700 directory, as mktemp -d makes) would turn every key login into AUTHENTICATION.
  if command -v runuser >/dev/null 2>&1 && ! runuser -u "$user" -- test -r "$STATE_DIR/authorized_keys/$user"; then
    die "user $user cannot read $STATE_DIR/authorized_keys/$user: a directory above it is not searchable by others (mode 0700, as mktemp -d makes?); give those directories o+x, or set AGENTBOX_SSHD_DIR to a directory outside it"
  fi
done

# --- 4. sshd ---------------------------------------------------------------------------------
port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
PORT=""
if [ -s "$STATE" ]; then
  # Keep the previous port when it is free, so known_hosts entries of earlier runs stay valid.
  PORT="$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$STATE" | head -n1)"
  if [ -n "$PORT" ] && port_in_use "$PORT"; then PORT=""; fi
fi
if [ -z "$PORT" ]; then
  for _ in $(seq 1 200); do
    candidate=$((20000 + RANDOM % 40000))
    if ! port_in_use "$candidate"; then
      PORT="$candidate"
      break
    fi
  done
fi
[ -n "$PORT" ] || die "no free port found"

cat >"$CONFIG" <<EOF
# Written by scripts/provision-sshd.sh: a private sshd for the agentbox SSH backend tests.
Port $PORT
ListenAddress 127.0.0.1
HostKey $STATE_DIR/ssh_host_ed25519_key
HostKey $STATE_DIR/ssh_host_rsa_key
PidFile $PID_FILE
AuthorizedKeysFile $STATE_DIR/authorized_keys/%u
AllowUsers ${USERS[*]}
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UsePAM no
StrictModes no
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
AcceptEnv none
MaxSessions 64
MaxStartups 100:30:200
MaxAuthTries 6
LoginGraceTime 30
ClientAliveInterval 0
Subsystem sftp internal-sftp
LogLevel INFO
EOF

/usr/sbin/sshd -t -f "$CONFIG" || die "sshd rejected $CONFIG"
rm -f "$PID_FILE"
say "starting sshd on 127.0.0.1:$PORT (log: $LOG_FILE)"
/usr/sbin/sshd -f "$CONFIG" -E "$LOG_FILE"
for _ in $(seq 1 100); do
  if [ -s "$PID_FILE" ] && port_in_use "$PORT"; then break; fi
  sleep 0.1
done
[ -s "$PID_FILE" ] && port_in_use "$PORT" || die "sshd did not start; see $LOG_FILE"

fingerprint() { ssh-keygen -lf "$1" | awk '{print $2}'; }
{
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$STATE_DIR/ssh_host_ed25519_key.pub")"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$STATE_DIR/ssh_host_rsa_key.pub")"
} >"$STATE_DIR/known_hosts"

cat >"$STATE.tmp" <<EOF
{
  "host": "127.0.0.1",
  "port": $PORT,
  "pid": $(cat "$PID_FILE"),
  "pidFile": "$PID_FILE",
  "stateDir": "$STATE_DIR",
  "logFile": "$LOG_FILE",
  "knownHostsFile": "$STATE_DIR/known_hosts",
  "hostKeys": {
    "ed25519": { "publicKeyFile": "$STATE_DIR/ssh_host_ed25519_key.pub", "fingerprint": "$(fingerprint "$STATE_DIR/ssh_host_ed25519_key.pub")" },
    "rsa": { "publicKeyFile": "$STATE_DIR/ssh_host_rsa_key.pub", "fingerprint": "$(fingerprint "$STATE_DIR/ssh_host_rsa_key.pub")" }
  },
  "users": ["${USERS[0]}", "${USERS[1]}"],
  "password": "$PASSWORD",
  "privateKeyFile": "$STATE_DIR/id_ed25519",
  "passphraseKeyFile": "$STATE_DIR/id_ed25519_passphrase",
  "passphrase": "$KEY_PASSPHRASE",
  "unauthorizedKeyFile": "$STATE_DIR/id_ed25519_unauthorized"
}
EOF
mv "$STATE.tmp" "$STATE"
say "sshd running (pid $(cat "$PID_FILE")) on 127.0.0.1:$PORT; state in $STATE"
