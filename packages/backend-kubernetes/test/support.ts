/**
 * Why the kubernetes tests cannot run on this Node.js, or undefined when they can:
 * @kubernetes/client-node 2 imports undici 8, which needs Node.js 22.19 or later (on Node 20
 * its import throws). scripts/test-all.sh runs them in its second pass (Node 24).
 */
export function unsupportedNode(): string | undefined {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 19)) return undefined;
  return `@kubernetes/client-node 2 needs Node.js >= 22.19 (its undici 8 does not load on ${process.version}); they run in the Node 24 pass`;
}

/**
 * A known gap, skipped by name in the conformance runs: the wrappers and session shells run
 * the image's readable `sh`, so a process of the sandbox user can open their fds through /proc
 * and write into later results. The docker backend closes it with execute-only copies of the
 * shell on a mount the sandbox cannot write; this backend does not have that yet.
 */
export const SESSION_PIPE_GAP =
  "the command wrappers and session shells run the image's readable sh, so a process of the sandbox user can write into their fds through /proc (no execute-only shell copies yet)";
