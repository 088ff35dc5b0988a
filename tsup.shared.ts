import { defineConfig, type Options } from 'tsup';

/** How every package is built: ESM + CJS + type declarations of its src/index.ts, for Node 20+. */
export function packageBuild(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    // import.meta.url in the CommonJS output too (discovery walks up from where a package is installed).
    shims: true,
    // Only this package's src: parallel builds of other packages must not leak in.
    tsconfig: 'tsconfig.build.json',
    ...overrides,
  });
}
