import { packageBuild } from '../../tsup.shared.ts';

// Two entry points: the user API (index) and the backend kit (backend). The CommonJS build keeps
// a copy of the shared modules per entry, which is safe: the registry lives on globalThis and
// the error classes match across copies.
export default packageBuild({ entry: ['src/index.ts', 'src/backend.ts'] });
