import { mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

export default mergeConfig(shared, {
  test: {
    // The leak check after the suite (scripts/leak-check.ts).
    globalSetup: ['./test/global-setup.ts'],
  },
});
