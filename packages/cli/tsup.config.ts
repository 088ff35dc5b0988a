import { packageBuild } from '../../tsup.shared.ts';

// index: `main(argv)` for programs that embed the CLI; cli: the `agentbox`
// executable (tsup keeps the shebang of src/cli.ts and marks the output executable).
export default packageBuild({
  entry: ['src/index.ts', 'src/cli.ts'],
  dts: { entry: { index: 'src/index.ts' } },
});
