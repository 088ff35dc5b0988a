/** The docker backend's settings (`spec.config`), validated field by field. */
import type { EgressDenial } from '@agentbox/core/backend';
import { z } from 'zod';

/**
 * The official busybox image from Docker Hub, pulled when missing: it has everything the sandbox
 * and the checkpoint helper run (sh, setsid, stat, find, sha256sum, nc, ...). agentbox's own
 * image (image/Dockerfile in this package) is the offline alternative.
 */
export const DEFAULT_IMAGE = 'busybox:1.37';

/** When to pull: an image not on the daemon (default), on every open, or never. */
export const PullPolicySchema = z.enum(['missing', 'always', 'never']);

const absolute = z.string().startsWith('/', 'must be an absolute path');

export const DockerConnectionSchema = z.strictObject({
  /**
   * The daemon, as DOCKER_HOST spells it: `unix:///var/run/docker.sock`, `tcp://host:2375`,
   * `http://…`, `https://…` (TLS), `ssh://user@host` (over ssh, keys from SSH_AUTH_SOCK).
   * Default: DOCKER_HOST (read once, when the sandbox opens; with DOCKER_TLS_VERIFY and
   * DOCKER_CERT_PATH as the docker CLI reads them), else the default socket.
   */
  host: z.string().min(1).optional(),
  /** Path of the daemon's unix socket; shorthand for `host: unix://PATH`. */
  socketPath: z.string().min(1).optional(),
  /** TLS material for an `https://` host (PEM text). */
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
  /** How long one API request may take before the daemon counts as unreachable. */
  requestTimeoutMs: z.number().int().positive().default(30_000),
});

export const DockerConfigSchema = z.strictObject({
  /**
   * Image of the sandbox. It needs `/bin/sh`, `setsid` on PATH and a few POSIX tools (`id`,
   * `stat`, `cat`, `chmod`, `mkdir`, `readlink`, `sleep`); open checks and names what is missing.
   */
  image: z.string().min(1).default(DEFAULT_IMAGE),
  /**
   * Image of the checkpoint helper (and the network-allowlist forwarder): needs busybox-style
   * `sh`, `find`, `stat`, `cp`, `sha256sum`, `nc`. Default: the same busybox image.
   */
  helperImage: z.string().min(1).default(DEFAULT_IMAGE),
  /**
   * When the daemon pulls an image: `missing` (default) pulls one it does not have, `always`
   * pulls on every open (a moving tag gets updated), `never` refuses to open without it.
   */
  pull: PullPolicySchema.default('missing'),
  /**
   * Who this sandbox belongs to, as its owner label: a default sweep removes only sandboxes of
   * this owner. Default: `user@host` of this process.
   */
  owner: z.string().min(1).max(200).optional(),
  docker: DockerConnectionSchema.default({ requestTimeoutMs: 30_000 }),
  /**
   * `uid:gid` (or a name the image knows) commands run as. Default `1000:1000`, or `0:0` when
   * the policy asks for `nonRootUser: false`.
   */
  user: z.string().min(1).optional(),
  /** The workspace: a labelled Docker volume mounted here; the working directory of every command. */
  workdir: absolute.default('/workspace'),
  /** A second writable volume for agent skills, or `false` for none. */
  skillsDir: z.union([absolute, z.literal(false)]).default('/skills'),
  /** Extra environment for every command (the caller's `env` on exec overrides it). */
  env: z.record(z.string(), z.string()).default({}),
  /**
   * The OCI runtime of the sandbox container, as the daemon names it: `runsc` runs it under
   * gVisor (its system calls go to a kernel in user space, not the host's). The daemon must have
   * it registered (scripts/provision-gvisor.sh); strict mode refuses to open otherwise. Default:
   * the daemon's default runtime (runc). The checkpoint helper and forwarders keep the default.
   */
  runtime: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a runtime name the daemon knows, e.g. runsc')
    .optional(),
  /** Network allowlist mode: the network the forwarders reach allowed hosts through. */
  egressNetwork: z.string().min(1).default('bridge'),
  /**
   * Network allowlist mode: the file on this machine each denied egress attempt is appended to,
   * one JSON line each (time, sandboxId, protocol, destination). Default
   * `~/.agentbox/egress-denied.log`.
   */
  egressLog: z.string().min(1).optional(),
  /** Called with each denied egress attempt too (the sandbox's `egressDenials` keeps the latest). */
  onEgressDenied: z.custom<(denial: EgressDenial) => void>((v) => typeof v === 'function').optional(),
  /**
   * Run small commands down a shell kept open in the container (core's SessionPool), with the
   * same semantics as one docker exec per command but ~10x faster. `false` gives every command
   * its own docker exec. A speed setting, not a policy: it changes nothing the sandbox enforces.
   */
  fastPath: z.boolean().default(true),
  /** Leave the container and its volumes in place on close, to re-attach later by id. */
  keep: z.boolean().default(false),
});

/** What a user writes as `config` for the docker backend: every field has a default. */
export type DockerConfig = z.input<typeof DockerConfigSchema>;
/** The config as the backend sees it: parsed, every default filled in. */
export type DockerResolvedConfig = z.output<typeof DockerConfigSchema>;
/** @deprecated The same as DockerConfig (the input type), its name since the configs follow one rule. */
export type DockerConfigInput = DockerConfig;
export type PullPolicy = z.output<typeof PullPolicySchema>;
export type DockerConnection = z.output<typeof DockerConnectionSchema>;
