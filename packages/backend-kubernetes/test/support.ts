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
