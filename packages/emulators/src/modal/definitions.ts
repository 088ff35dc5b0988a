/**
 * The gRPC service definitions the Modal SDK speaks (`modal.client.ModalClient` and
 * `modal.task_command_router.TaskCommandRouter`). The `modal` package (0.11) ships them, with
 * their ts-proto message codecs, inside its bundle but does not export them. They are read from
 * that bundle as installed: its CommonJS build is compiled once more in memory with one line
 * added that hands the two definitions out. Nothing on disk changes, so the emulator always
 * speaks exactly the protocol of the SDK version installed beside it.
 */
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** One method of a ts-proto service definition, as nice-grpc's server reads it. */
export interface MethodDefinition {
  name: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: unknown;
  responseType: unknown;
  options: unknown;
}

export interface ServiceDefinition {
  name: string;
  fullName: string;
  methods: Record<string, MethodDefinition>;
}

export interface ModalDefinitions {
  controlPlane: ServiceDefinition;
  commandRouter: ServiceDefinition;
  /** The SDK version the definitions come from. */
  version: string;
}

let loaded: ModalDefinitions | undefined;

const HANDOUT =
  '\n;module.exports.__agentboxDefinitions = { controlPlane: ModalClientDefinition, commandRouter: TaskCommandRouterDefinition };\n';

type CompilableModule = Module & {
  _compile(code: string, filename: string): void;
  paths: string[];
  filename: string;
};

export function modalDefinitions(): ModalDefinitions {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  // `require.resolve('modal')` is the CommonJS entry (dist/index.cjs) of the installed SDK.
  const entry = require.resolve('modal');
  const packageJson = join(dirname(entry), '..', 'package.json');
  const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
  const source = readFileSync(entry, 'utf8');
  const ModuleClass = Module as unknown as {
    new (id: string, parent?: Module): CompilableModule;
    _nodeModulePaths(from: string): string[];
  };
  const copy = new ModuleClass(entry);
  copy.filename = entry;
  copy.paths = ModuleClass._nodeModulePaths(dirname(entry));
  copy._compile(source + HANDOUT, entry);
  const handed = (copy.exports as { __agentboxDefinitions?: Omit<ModalDefinitions, 'version'> })
    .__agentboxDefinitions;
  if (!handed?.controlPlane?.methods || !handed.commandRouter?.methods)
    throw new Error(
      `modal ${version}: its bundle no longer holds the service definitions the emulator reads`,
    );
  loaded = { ...handed, version };
  return loaded;
}
