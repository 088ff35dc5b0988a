/**
 * @agentbox/emulators: local stand-ins for cloud sandbox APIs, each sandbox a real Docker
 * container, for developing and testing offline against the providers' unmodified SDKs.
 */
export {
  type DaytonaEmulator,
  type DaytonaEmulatorOptions,
  startDaytonaEmulator,
} from './daytona/emulator.js';
export { EMULATOR_LABEL, INSTANCE_LABEL } from './docker.js';
export {
  type KubernetesEmulator,
  type KubernetesEmulatorOptions,
  startKubernetesEmulator,
} from './kubernetes/emulator.js';
export {
  type ModalEmulator,
  type ModalEmulatorOptions,
  startModalEmulator,
} from './modal/emulator.js';
export * from './models/index.js';
export {
  startVercelEmulator,
  VERCEL_API,
  type VercelEmulator,
  type VercelEmulatorOptions,
} from './vercel/emulator.js';
