/** Help texts: `agentbox --help` and `agentbox COMMAND --help`. */

const SANDBOX_FLAGS = `Backend flags (every command that opens a sandbox):
  --backend KIND        local, docker, ssh, or any installed backend (agentbox doctor lists them);
                        default: the backend \`agentbox open\` recorded for --id, else local
  --config JSON         the backend's config, e.g. '{"root": "/tmp/boxes"}' (default: the recorded one)
  --config-file PATH    the same, read from a JSON file (recorded by its path)
  --policy JSON         hardening policy to request (refused unless the backend enforces it)
  --json                machine-readable output
  -h, --help            this help`;

export const COMMANDS = {
  open: `Usage: agentbox open [--id ID] [backend flags]

Create a sandbox that outlives this command (or re-attach to sandbox ID if it exists), then
print its id, working directory and what its policy enforcement reports. Its backend and config
are recorded in $XDG_STATE_HOME/agentbox/sandboxes/ID.json (~/.local/state by default; the
user's alone, no secrets: a --config-file by its path, an inline config without its passwords,
passphrases and keys), so later commands need only --id.`,

  exec: `Usage: agentbox exec --id ID [options] -- PROGRAM [ARGS...]
       agentbox exec --id ID [options] -c 'SHELL COMMAND'

Run one command in sandbox ID. Its stdout and stderr stream to this terminal's stdout and
stderr as they arrive, and agentbox exits with the command's exit code.

Options:
  -c, --command STRING  run STRING with sh -c (instead of PROGRAM ARGS as argv, no shell)
  --timeout-ms N        kill the command's whole process tree after N ms (exit 124)
  --cwd DIR             working directory (relative to the sandbox's workdir)
  --env K=V             extra environment variable (repeatable)
  --stdin               forward this process's stdin to the command (closed otherwise)

Exit status: the command's own; 124 on timeout; 2 for a usage or INVALID_ARGUMENT error;
1 for any other error; 130/143 when interrupted by SIGINT/SIGTERM.`,

  shell: `Usage: agentbox shell --id ID [--timeout-ms N] [--cwd DIR] [--env K=V ...]

A line-by-line REPL, not a terminal: each line read from stdin runs as its own \`sh -c\` in
sandbox ID, with stdin closed, so interactive programs (editors, pagers, sudo prompts) do not
work: a line that starts a full-screen program (vi, nano, emacs, htop, tmux, ...) is refused
with a message and status 126 instead of hanging. \`cd DIR\` alone on a line changes the directory of later lines; \`exit [N]\` or EOF
(Ctrl-D) ends the session; Ctrl-C interrupts the running command. Exits with the status of
the last command.`,

  checkpoint: `Usage: agentbox checkpoint --id ID [--label LABEL]

Save the sandbox's filesystem state; prints the checkpoint id.`,

  rollback: `Usage: agentbox rollback --id ID CHECKPOINT_ID

Restore the sandbox's filesystem to checkpoint CHECKPOINT_ID.`,

  checkpoints: `Usage: agentbox checkpoints --id ID

List the sandbox's checkpoints, oldest first.`,

  close: `Usage: agentbox close --id ID

Remove sandbox ID and everything it holds (workspace, checkpoints, containers), and its record.`,

  sweep: `Usage: agentbox sweep [--backend KIND] [--dry-run] [--older-than-ms N] [--id ID] [--all]

Remove sandboxes left behind (by crashes, or kept and forgotten), found by the backend's own
sweep: local: sandbox directories under the config's root; docker: labelled containers,
networks and volumes; ssh: sandbox directories on the host and what still runs in them. Every
sandbox of the backend that this user's agentbox created counts unless --older-than-ms or --id
is given (docker: the owner label, user@host or config.owner; local: the directory's owner).

Options:
  --dry-run             list what would be removed, remove nothing
  --older-than-ms N     only sandboxes created at least N ms ago
  --id ID               only sandbox ID (whoever created it)
  --all                 also sandboxes other users (or other hosts) created
  --backend KIND        local (default), docker, ssh, ...; --config JSON / --config-file PATH as
                        for the other commands (local: which root; docker: which daemon; ssh: which host)
  --json                machine-readable output`,

  doctor: `Usage: agentbox doctor [--backend KIND [--config JSON | --config-file PATH]] [--json]

Check each backend found here (or only KIND): what it needs, whether that is installed and
reachable, and which policy controls it can enforce on this machine. Backends are the installed
packages whose package.json says "agentbox": {"backend": KIND}, and the modules listed in the
AGENTBOX_BACKENDS environment variable (comma-separated paths or package names).

Exit status: 0 when every checked backend is ready, 1 otherwise.`,

  agent: `Usage: agentbox agent --task TEXT [model options] [limits] [--json]

Run the reference agent loop (@agentbox/agent) in a fresh sandbox, which is removed at the end
(or in sandbox ID with --id, which is kept), printing each model turn and tool call, then the
report (why it stopped, tokens, estimated cost, checkpoints). The loop's guards are on: dangerous
commands are denied (no one is there to approve them), skills and memory pass the Skills Guard,
and a checkpoint is taken before each destructive step.

Model (through the official openai and @anthropic-ai/sdk SDKs):
  --provider NAME       openai or anthropic (default: openai with --model-url or an OpenAI key,
                        anthropic with ANTHROPIC_API_KEY)
  --model-url URL       any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1
  --model NAME          the model to ask for (default gpt-4o-mini / claude-haiku-4-5)
  --api-key-env VAR     environment variable holding the key (default MODEL_API_KEY; then
                        OPENAI_API_KEY or ANTHROPIC_API_KEY)
  --fallback-provider NAME, --fallback-url URL, --fallback-model NAME
                        the model that takes a turn when the primary fails (429, 5xx, timeout,
                        refused); its key in FALLBACK_API_KEY or the provider's variable
  --max-attempts N      tries per model and turn before the fallback (default 3)
  --replay FILE         play the turns of a file ({"turns": [...]}) or of a session log
Limits (each a hard stop with the report; exit 1):
  --max-steps N         model turns (default 25)
  --max-tokens N        output tokens over the run
  --max-cost-usd X      estimated cost, from the price table
  --max-seconds N       wall-clock time
  --kill-file PATH      stop at the next step when this file appears
Other:
  --log FILE            the session log (JSON lines, secrets redacted; agentbox log summarize FILE)
  --exec-timeout-ms N   longest a single command may run (default 120000)
  --json                one JSON object a line: the sandbox, each event, then the result

Exit status: 0 when the model finished; 1 when a limit or the kill switch stopped it, or on an
error (MODEL_UNAVAILABLE, AUTHENTICATION, ...); 2 for a usage error.

For an offline demo with a scripted model, run \`npm run demo\` at the repository root.`,

  mcp: `Usage: agentbox mcp [--backend KIND] [--config JSON | --config-file PATH] [--policy JSON]
                   [--keep | --id ID] [--timeout-ms N] [--max-output-bytes N] [--max-file-bytes N]
                   [--approvals ask|deny] [--max-calls N] [--max-seconds N]

Serve one sandbox as Model Context Protocol tools over stdio, for an MCP client (an agent in any
language) that starts this command. stdout carries the protocol only; log lines go to stderr.

Tools:
  exec              run a command (a string with sh -c, or argv): stdout, stderr and the exit code
                    apart; cwd, env, timeoutMs and stdin; long output cut to its head and tail, with a note
  read_file         a file as UTF-8 text or base64 (exact bytes)
  write_file        write a file (UTF-8 or base64 content; parents created; optional octal mode)
  list_dir          a directory's entries with their types and sizes
  checkpoint        save the filesystem state; returns its id
  rollback          restore a checkpoint
  list_checkpoints  the checkpoints, oldest first
  info              backend, id, workdir, capabilities and the policy enforcement report

Every tool returns structured content and a text rendering. A failed call (a bad argument, a
missing file, a timeout...) is a tool error (isError) whose text starts with the agentbox error
code (INVALID_ARGUMENT, NOT_FOUND, TIMEOUT, ...), with the whole error as JSON in
_meta["agentbox/error"]; the server keeps serving.

The same guards as the agent loop: a dangerous command (curl | sh, rm -rf ~, reading credentials,
...) runs only when approved, otherwise it fails with PERMISSION_DENIED and the reason. A write_file
into skills/ or memory/ passes the Skills Guard first, and after each exec the files it wrote there
are scanned; a dangerous one is moved to .quarantine/ with its report (the result's "quarantined").

A fresh sandbox is opened on the backend (local by default) and removed when the client goes
away (stdin ends) or on SIGINT/SIGTERM.

Options:
  --keep                keep the sandbox when the server ends (recorded: agentbox exec --id ID works)
  --id ID               serve existing sandbox ID (made by agentbox open); it is kept
  --timeout-ms N        longest a command may run, and the default (120000); a call may ask for less
  --max-output-bytes N  output kept per stream of a command, head and tail (65536)
  --max-file-bytes N    largest file read_file returns (1048576)
  --approvals ask|deny  ask: a dangerous command is put to the client's user (MCP elicitation) and
                        denied when the client cannot ask; deny: always denied (default ask)
  --max-calls N         tool calls the session may make; later calls fail with PERMISSION_DENIED
  --max-seconds N       wall-clock time of the session: a running command is stopped, later calls fail
  --backend KIND, --config JSON, --config-file PATH, --policy JSON: as for the other commands

Exit status: 0 when the client closed the connection; 130/143 on SIGINT/SIGTERM; 1 or 2 when
the sandbox could not be opened (the error on stderr, before any protocol message).

Example client configuration (Claude Desktop, Cursor and others):
  { "mcpServers": { "agentbox": { "command": "agentbox", "args": ["mcp", "--backend", "docker"] } } }`,

  emulate: `Usage: agentbox emulate daytona [--port N] [--host ADDR] [--api-key KEY] [--minute-ms N] [--json]
       agentbox emulate vercel [--port N] [--host ADDR] [--api-key TOKEN] [--json]
       agentbox emulate kubernetes [--port N] [--host ADDR] [--api-key TOKEN] [--json]
       agentbox emulate modal [--port N] [--api-key SECRET] [--json]

Serve a local stand-in for the Daytona API (@agentbox/emulators) until Ctrl-C: each sandbox is
a Docker container on this machine. Prints the URL and API key to give the SDK (polling mode:
DAYTONA_USE_DEPRECATED_POLLING=true). Stopping it removes every sandbox and snapshot it made.

Options:
  --port N              port to listen on (default: any free port), on 127.0.0.1 unless --host
  --api-key KEY         the key clients must send (default: a random one, printed)
  --minute-ms N         how long one minute of Daytona's auto-stop/delete intervals lasts (default 60000)

vercel: a stand-in for the Vercel Sandbox API (https://vercel.com/api); prints the vercel
backend's config (apiUrl, token, teamId, projectId). --api-key sets the token.

kubernetes: a Kubernetes API server stand-in (pods, secrets, networkpolicies, agent-sandbox
Sandbox, pods/exec; each pod Docker containers); writes a kubeconfig and prints its path.
--api-key sets the bearer token.

modal: Modal's gRPC control plane and task command router (the modal SDK 0.11) on 127.0.0.1;
prints MODAL_SERVER_URL, MODAL_TOKEN_ID and MODAL_TOKEN_SECRET. --api-key sets the token secret.`,

  log: `Usage: agentbox log summarize FILE [--json]

Read an agent's session log (JSON lines, as written by @agentbox/agent's SessionLog) and print
what the run did: the task, how it ended, steps, models, tokens and estimated cost, tool calls
and failures, checkpoints, rollbacks, retries and fallbacks. Exit status 0 when the run
finished, 1 when a limit, the kill switch or an error ended it, or the log stops short.

Options:
  --json                the summary as one JSON object`,
} as const;

export type CommandName = keyof typeof COMMANDS;

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

export const MAIN_USAGE = `Usage: agentbox COMMAND [flags]

Commands:
  open          create (or re-attach to) a sandbox that outlives the command
  exec          run a command in a sandbox, streaming its output
  shell         run lines read from stdin, one command each (not a terminal)
  checkpoint    save a sandbox's filesystem state
  rollback      restore a checkpoint
  checkpoints   list checkpoints
  close         remove a sandbox
  sweep         remove sandboxes left behind
  doctor        check what each backend needs here and what it can enforce
  agent         run the reference agent loop against a chat-completions model
  emulate       serve a local stand-in for a cloud provider's API (daytona, vercel, modal, kubernetes)
  log           summarize an agent's session log
  mcp           serve a sandbox as MCP tools over stdio (for agents in any language)

Run \`agentbox COMMAND --help\` for a command's flags.`;

export function commandUsage(command: CommandName): string {
  return command === 'sweep' ||
    command === 'doctor' ||
    command === 'emulate' ||
    command === 'mcp' ||
    command === 'log'
    ? COMMANDS[command]
    : `${COMMANDS[command]}\n\n${SANDBOX_FLAGS}`;
}
