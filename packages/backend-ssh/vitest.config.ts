import { mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

export default mergeConfig(shared, {
  test: {
    // Starts the private test sshd (scripts/provision-sshd.sh) unless it is already running.
    globalSetup: ['./test/global-setup.ts'],
  },
});
