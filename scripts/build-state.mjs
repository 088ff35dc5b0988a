#!/usr/bin/env node
/**
 * What scripts/bootstrap.sh may skip. A stamp records the hash of everything an install or a
 * package build reads; a step whose inputs hash the same as its stamp (and whose outputs are
 * present) is up to date. Stamps live in node_modules/.agentbox-build, so a fresh install starts
 * from nothing.
 *
 *   node scripts/build-state.mjs install-needed     exit 0 when `pnpm install` must run, 1 when not
 *   node scripts/build-state.mjs install-stamp      record a successful install
 *   node scripts/build-state.mjs stale              print `NAME HASH` for each package to build
 *   node scripts/build-state.mjs stamp NAME=HASH... record successful builds (the hashes `stale`
 *                                                   printed before the build, so an edit made
 *                                                   during the build is not stamped as built)
 *
 * A package's hash covers its sources and build config, the shared build config, the lockfile,
 * and the hashes of its workspace dependencies, so an edit to core rebuilds what depends on it.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STAMPS = join(ROOT, 'node_modules', '.agentbox-build');
/** Files at the root that every package build reads. */
const SHARED_BUILD_INPUTS = ['tsup.shared.ts', 'tsconfig.base.json', 'tsconfig.build.json', 'pnpm-lock.yaml'];
/** Never build inputs: outputs, installed modules, tests and docs. */
const SKIPPED_DIRS = new Set(['dist', 'node_modules', 'test', '.tmp', 'coverage']);

/** The workspace's package directories, from pnpm-workspace.yaml (`dir` and `dir/*` entries). */
function workspaceDirs() {
  const text = readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8');
  const block = /^packages:\n((?:[ \t]+-.*\n?)+)/m.exec(text)?.[1] ?? '';
  const dirs = [];
  for (const line of block.split('\n')) {
    const entry = /^\s*-\s*['"]?([^'"\s]+)['"]?/.exec(line)?.[1];
    if (!entry) continue;
    if (entry.endsWith('/*')) {
      const parent = join(ROOT, entry.slice(0, -2));
      if (!existsSync(parent)) continue;
      for (const name of readdirSync(parent).sort())
        if (existsSync(join(parent, name, 'package.json'))) dirs.push(join(parent, name));
    } else if (existsSync(join(ROOT, entry, 'package.json'))) dirs.push(join(ROOT, entry));
  }
  return dirs;
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Every file under `dir` that a build reads, as sorted paths. */
function inputFiles(dir) {
  const files = [];
  const walk = (current, top) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(path, false);
      } else if (entry.isFile() && !(top && (/\.md$/i.test(entry.name) || entry.name === 'LICENSE'))) {
        files.push(path);
      }
    }
  };
  walk(dir, true);
  return files.sort();
}

function hashFiles(hash, files) {
  for (const file of files) {
    hash.update(`${relative(ROOT, file)}\0`);
    hash.update(existsSync(file) ? readFileSync(file) : '(absent)');
    hash.update('\0');
  }
}

/** The workspace packages by name: dir, manifest, workspace dependencies, and whether it builds. */
function workspace() {
  const packages = new Map();
  for (const dir of workspaceDirs()) {
    const manifest = readJson(join(dir, 'package.json'));
    packages.set(manifest.name, { dir, manifest, builds: Boolean(manifest.scripts?.build) });
  }
  for (const pkg of packages.values()) {
    const m = pkg.manifest;
    const all = { ...m.dependencies, ...m.devDependencies, ...m.peerDependencies, ...m.optionalDependencies };
    pkg.deps = Object.keys(all)
      .filter((name) => packages.has(name))
      .sort();
  }
  return packages;
}

/** Each building package's input hash (its own inputs plus its dependencies' hashes). */
function buildHashes(packages) {
  const hashes = new Map();
  const visiting = new Set();
  const shared = createHash('sha256');
  hashFiles(
    shared,
    SHARED_BUILD_INPUTS.map((name) => join(ROOT, name)),
  );
  const sharedDigest = shared.digest('hex');
  const hashOf = (name) => {
    if (hashes.has(name)) return hashes.get(name);
    if (visiting.has(name)) throw new Error(`build-state: dependency cycle through ${name}`);
    visiting.add(name);
    const pkg = packages.get(name);
    const hash = createHash('sha256').update(`${sharedDigest}\0`);
    hashFiles(hash, inputFiles(pkg.dir));
    for (const dep of pkg.deps) hash.update(`${dep}=${hashOf(dep)}\0`);
    const digest = hash.digest('hex');
    visiting.delete(name);
    hashes.set(name, digest);
    return digest;
  };
  for (const name of packages.keys()) hashOf(name);
  return hashes;
}

/** The files a package's manifest says it ships (main, module, types, bin, exports). */
function declaredOutputs(manifest) {
  const out = [];
  const collect = (value) => {
    if (typeof value === 'string') out.push(value);
    else if (value && typeof value === 'object') for (const v of Object.values(value)) collect(v);
  };
  collect([manifest.main, manifest.module, manifest.types, manifest.bin, manifest.exports]);
  return out.filter((path) => !path.includes('*'));
}

const stampPath = (name) => join(STAMPS, `${name.replaceAll('/', '+')}.sha256`);
const readStamp = (name) => (existsSync(stampPath(name)) ? readFileSync(stampPath(name), 'utf8').trim() : '');

function writeStamp(name, digest) {
  mkdirSync(STAMPS, { recursive: true });
  const tmp = `${stampPath(name)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${digest}\n`);
  renameSync(tmp, stampPath(name));
}

function installHash(packages) {
  const hash = createHash('sha256');
  const manifests = [...packages.values()].map((pkg) => join(pkg.dir, 'package.json'));
  hashFiles(hash, [
    join(ROOT, 'package.json'),
    join(ROOT, 'pnpm-lock.yaml'),
    join(ROOT, 'pnpm-workspace.yaml'),
    ...manifests,
  ]);
  hash.update(`node ${process.versions.node.split('.')[0]}\0`);
  return hash.digest('hex');
}

const INSTALL_STAMP = 'install';
const [command, ...names] = process.argv.slice(2);
const packages = workspace();
switch (command) {
  case 'install-needed': {
    const installed = existsSync(join(ROOT, 'node_modules', '.modules.yaml'));
    process.exit(installed && readStamp(INSTALL_STAMP) === installHash(packages) ? 1 : 0);
    break;
  }
  case 'install-stamp':
    writeStamp(INSTALL_STAMP, installHash(packages));
    break;
  case 'stale': {
    const hashes = buildHashes(packages);
    for (const [name, pkg] of packages) {
      if (!pkg.builds) continue;
      const built = declaredOutputs(pkg.manifest).every((path) => {
        const full = join(pkg.dir, path);
        return existsSync(full) && statSync(full).isFile();
      });
      if (!built || readStamp(name) !== hashes.get(name)) console.log(`${name} ${hashes.get(name)}`);
    }
    break;
  }
  case 'stamp':
    for (const pair of names) {
      const [name, digest] = pair.split('=');
      if (!packages.has(name) || !/^[0-9a-f]{64}$/.test(digest ?? ''))
        throw new Error(`build-state: stamp takes NAME=HASH of a workspace package, got ${pair}`);
      writeStamp(name, digest);
    }
    break;
  default:
    console.error('usage: build-state.mjs install-needed | install-stamp | stale | stamp NAME=HASH...');
    process.exit(2);
}
