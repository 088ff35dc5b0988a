import { mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

export default mergeConfig(shared, {
  test: {
    // Starts dockerd and builds the test image (scripts/provision-docker.sh) unless they are already there.
    globalSetup: ['./test/global-setup.ts'],
  },
});
