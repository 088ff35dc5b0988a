/**
 * Finding backends by kind, in one place. A backend is a package whose package.json says
 * `"agentbox": { "backend": "<kind>" }`, found in any `node_modules` (plain and scoped) on the way
 * up from the working directory or from where this package is installed; or a module (a path,
 * or a package name) listed in AGENTBOX_BACKENDS, comma-separated. Importing the module
 * registers its kind; `loadBackend(kind)` does that and returns the definition.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AgentboxError, InvalidArgumentError } from './errors.js';
import { type BackendDefinition, type BackendRegistry, defaultRegistry } from './registry.js';
import { didYouMean } from './suggest.js';

export interface DiscoveryOptions {
  /** Directories to walk up from. Default: the working directory, then where this package is installed. */
  from?: readonly string[];
  /** Environment holding AGENTBOX_BACKENDS. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  registry?: BackendRegistry;
}

/** A backend module found on disk, not yet imported. */
export interface FoundBackend {
  /** Its kind; undefined for a module listed in AGENTBOX_BACKENDS with no package.json that says. */
  kind: string | undefined;
  /** The package name, or the path given in AGENTBOX_BACKENDS. */
  module: string;
  /** The package directory (or the module file). */
  path: string;
}

interface PackageJson {
  name?: unknown;
  agentbox?: { backend?: unknown };
  exports?: unknown;
  module?: unknown;
  main?: unknown;
}

/** Every backend found, explicit ones (AGENTBOX_BACKENDS) first, then the nearest node_modules first. */
export async function findBackends(options: DiscoveryOptions = {}): Promise<FoundBackend[]> {
  const found: FoundBackend[] = [];
  for (const entry of listedModules(options.env ?? process.env)) found.push(await findListed(entry, options));
  const seen = new Set<string>();
  for (const dir of nodeModulesDirs(options.from ?? defaultStarts())) {
    for (const pkgDir of await packageDirs(dir)) {
      const pkg = await readPackageJson(pkgDir);
      const kind = backendKind(pkg);
      if (kind === undefined || typeof pkg?.name !== 'string' || seen.has(pkg.name)) continue;
      seen.add(pkg.name);
      found.push({ kind, module: pkg.name, path: pkgDir });
    }
  }
  return found;
}

/** The kinds available: registered already, or found on disk (modules that do not say their kind are imported to learn it). */
export async function listBackends(options: DiscoveryOptions = {}): Promise<string[]> {
  const registry = options.registry ?? defaultRegistry;
  const kinds = new Set(registry.kinds);
  for (const found of await findBackends(options)) {
    if (found.kind !== undefined) kinds.add(found.kind);
    else for (const kind of await importForKinds(found, registry)) kinds.add(kind);
  }
  return [...kinds].sort();
}

/** Import the module of backend `kind` (which registers it) and return its definition. */
export async function loadBackend(kind: string, options: DiscoveryOptions = {}): Promise<BackendDefinition> {
  const registry = options.registry ?? defaultRegistry;
  const registered = registry.get(kind);
  if (registered) return registered;
  const all = await findBackends(options);
  const found = all.find((f) => f.kind === kind);
  if (found) {
    await importBackend(found);
    const def = registry.get(kind);
    if (!def)
      throw new AgentboxError(
        `${found.module} says it is the "${kind}" backend but registered no such kind`,
        {
          backend: kind,
          operation: 'load',
          subject: found.path,
        },
      );
    return def;
  }
  // Modules that do not say their kind: import them and look again.
  for (const unnamed of all.filter((f) => f.kind === undefined)) await importForKinds(unnamed, registry);
  const def = registry.get(kind);
  if (def) return def;
  const known = await listBackends(options);
  const suggestion = didYouMean(kind, known);
  throw new InvalidArgumentError(
    `unknown backend "${kind}"${suggestion}; found: ${known.length ? known.join(', ') : '(none)'}. Install its package (e.g. @agentbox/backend-${kind}) or list its module in AGENTBOX_BACKENDS`,
    { operation: 'load', issues: [`backend: unknown kind "${kind}"${suggestion}`] },
  );
}

function listedModules(env: Readonly<Record<string, string | undefined>>): string[] {
  return (env.AGENTBOX_BACKENDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function isPath(entry: string): boolean {
  return isAbsolute(entry) || entry.startsWith('./') || entry.startsWith('../') || entry.startsWith('file:');
}

async function findListed(entry: string, options: DiscoveryOptions): Promise<FoundBackend> {
  const fail = (why: string) =>
    new InvalidArgumentError(`AGENTBOX_BACKENDS: ${JSON.stringify(entry)} ${why}`, {
      operation: 'load',
      issues: [`AGENTBOX_BACKENDS: ${entry}: ${why}`],
    });
  if (isPath(entry)) {
    const path = entry.startsWith('file:') ? fileURLToPath(entry) : resolve(entry);
    const st = await stat(path).catch(() => undefined);
    if (!st) throw fail('does not exist');
    if (st.isDirectory()) {
      const pkg = await readPackageJson(path);
      if (!pkg) throw fail('is a directory without a package.json');
      return { kind: backendKind(pkg), module: entry, path };
    }
    return { kind: await kindAbove(dirname(path)), module: entry, path };
  }
  for (const dir of nodeModulesDirs(options.from ?? defaultStarts())) {
    const pkgDir = join(dir, entry);
    const pkg = await readPackageJson(pkgDir);
    if (pkg) return { kind: backendKind(pkg), module: entry, path: pkgDir };
  }
  throw fail('is no package found in node_modules');
}

/** The kind named by the package.json governing a file, if that package says it is a backend. */
async function kindAbove(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = dirname(d)) {
    const pkg = await readPackageJson(d);
    if (pkg) return backendKind(pkg);
    if (dirname(d) === d) return undefined;
  }
}

async function importForKinds(found: FoundBackend, registry: BackendRegistry): Promise<string[]> {
  const before = new Set(registry.kinds);
  await importBackend(found);
  return registry.kinds.filter((kind) => !before.has(kind));
}

/** Import a found backend. A package is imported by name first (so tsconfig paths and test aliases apply), else from its directory. */
async function importBackend(found: FoundBackend): Promise<void> {
  const where = { backend: found.kind, operation: 'load', subject: found.path };
  try {
    if (isPath(found.module)) {
      const st = await stat(found.path);
      await import(pathToFileURL(st.isDirectory() ? await entryFile(found.path) : found.path).href);
      return;
    }
    try {
      await import(found.module);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' || !String((error as Error).message).includes(found.module))
        throw error;
    }
    await import(pathToFileURL(await entryFile(found.path)).href);
  } catch (error) {
    if (error instanceof AgentboxError) throw error;
    throw new AgentboxError(`cannot load ${found.module}: ${(error as Error).message}`, {
      ...where,
      cause: error,
    });
  }
}

/** The file `import` would load from a package directory: its ESM export of ".", else module, else main. */
async function entryFile(pkgDir: string): Promise<string> {
  const pkg = (await readPackageJson(pkgDir)) ?? {};
  const root =
    pkg.exports && typeof pkg.exports === 'object' && '.' in pkg.exports
      ? (pkg.exports as Record<string, unknown>)['.']
      : pkg.exports;
  const target =
    pick(root) ??
    (typeof pkg.module === 'string' ? pkg.module : undefined) ??
    (typeof pkg.main === 'string' ? pkg.main : 'index.js');
  return join(pkgDir, target);
}

function pick(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) return target.map(pick).find((t) => t !== undefined);
  if (!target || typeof target !== 'object') return undefined;
  const conditions = target as Record<string, unknown>;
  for (const condition of ['import', 'module', 'node', 'default']) {
    const chosen = pick(conditions[condition]);
    if (chosen !== undefined) return chosen;
  }
  return undefined;
}

function backendKind(pkg: PackageJson | undefined): string | undefined {
  const kind = pkg?.agentbox?.backend;
  return typeof kind === 'string' && kind.length > 0 ? kind : undefined;
}

async function readPackageJson(dir: string): Promise<PackageJson | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    return value && typeof value === 'object' ? (value as PackageJson) : undefined;
  } catch {
    return undefined;
  }
}

function defaultStarts(): string[] {
  return [process.cwd(), dirname(fileURLToPath(import.meta.url))];
}

/** Every `node_modules` on the way up from each start, nearest first, each once. */
function nodeModulesDirs(starts: readonly string[]): string[] {
  const dirs: string[] = [];
  for (const start of starts) {
    for (let d = resolve(start); ; d = dirname(d)) {
      const nm = join(d, 'node_modules');
      if (!dirs.includes(nm)) dirs.push(nm);
      if (dirname(d) === d) break;
    }
  }
  return dirs;
}

/** The package directories in one node_modules: `name` and `@scope/name` (dot-directories such as .pnpm and .bin skipped). */
async function packageDirs(nodeModules: string): Promise<string[]> {
  const entries = await readdir(nodeModules, { withFileTypes: true }).catch(() => [] as Dirent[]);
  const dirs: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.') || !(entry.isDirectory() || entry.isSymbolicLink())) continue;
    const path = join(nodeModules, entry.name);
    if (!entry.name.startsWith('@')) {
      dirs.push(path);
      continue;
    }
    const scoped = await readdir(path, { withFileTypes: true }).catch(() => [] as Dirent[]);
    for (const inner of scoped)
      if (!inner.name.startsWith('.') && (inner.isDirectory() || inner.isSymbolicLink()))
        dirs.push(join(path, inner.name));
  }
  return dirs.sort();
}
