export {
  estimateTokens,
  type FakeReply,
  type FakeRequest,
  FakeScript,
  type FakeStep,
  type FakeToolCall,
} from './script.js';
export {
  type FakeModelApi,
  type FakeModelServer,
  type FakeModelServerOptions,
  refusedModelUrl,
  startFakeModelServer,
} from './server.js';
