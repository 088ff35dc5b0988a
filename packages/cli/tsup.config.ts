import { defineConfig } from 'tsup';

export default defineConfig({
  // index: `main(argv)` and the local sweep for programs that embed the CLI; cli: the `agentbox`
  // executable (tsup keeps the shebang of src/cli.ts and marks the output executable).
  entry: ['src/index.ts', 'src/cli.ts'],
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
});
