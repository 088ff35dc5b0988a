/**
 * Compile-time checks of the published types, compiled (never run) in the packed-consumer
 * project: configs are typed by kind, and nothing the packages export is `any`. A check that
 * stops holding fails the compile (`@ts-expect-error` unused, or `true` not assignable to `false`).
 */

import type { DockerConfig, DockerResolvedConfig, DockerSandbox, docker } from '@agentbox/backend-docker';
import type { LocalConfig, LocalResolvedConfig, local } from '@agentbox/backend-local';
import type { SshConfig, SshResolvedConfig, SshSandbox, ssh } from '@agentbox/backend-ssh';
import {
  type BackendConfigFor,
  type BackendDefinition,
  type ExecResult,
  openSandbox,
  type SandboxBackend,
  type SandboxSpec,
} from '@agentbox/core';
import type { SessionPool } from '@agentbox/core/backend';

type IsAny<T> = 0 extends 1 & T ? true : false;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const no = <T extends false>(_: T) => undefined;
const yes = <T extends true>(_: T) => undefined;

export async function typedConfigs(kind: string): Promise<void> {
  // @ts-expect-error `imag` is not a docker config key (TypeScript suggests `image`).
  await openSandbox({ backend: 'docker', config: { imag: 'busybox' } });
  // @ts-expect-error `isolation` takes 'none' | 'bwrap'.
  await openSandbox({ backend: 'local', config: { isolation: 'bwarp' } });
  // @ts-expect-error an ssh config needs `user` and `auth`.
  await openSandbox({ backend: 'ssh', config: { host: 'example.org' } });
  await openSandbox({ backend: 'docker', config: { image: 'busybox', docker: { requestTimeoutMs: 5000 } } });
  // A kind no package declares (registered at run time) takes any config, checked when it opens.
  await openSandbox({ backend: 'third-party', config: { anything: 1 } });
  await openSandbox({ backend: kind, config: { anything: 1 } });
  const spec: SandboxSpec<'docker'> = { backend: 'docker', config: { keep: true } };
  await openSandbox(spec);
}

// The naming rule: <Name>Config is what the user writes, <Name>ResolvedConfig the parsed config.
yes<Equal<BackendConfigFor<'docker'>, DockerConfig>>(true);
yes<Equal<BackendConfigFor<'local'>, LocalConfig>>(true);
yes<Equal<BackendConfigFor<'ssh'>, SshConfig>>(true);
yes<Equal<BackendConfigFor<'not-a-package'>, unknown>>(true);
yes<Equal<typeof docker, BackendDefinition<DockerResolvedConfig>>>(true);
yes<Equal<typeof local, BackendDefinition<LocalResolvedConfig>>>(true);
yes<Equal<typeof ssh, BackendDefinition<SshResolvedConfig>>>(true);
const resolvedImage: DockerResolvedConfig['image'] = 'busybox';
void resolvedImage;

// No `any` comes out of the packages (an unresolved SDK type would turn into one).
no<IsAny<SandboxBackend>>(false);
no<IsAny<ExecResult>>(false);
no<IsAny<Awaited<ReturnType<typeof openSandbox>>>>(false);
no<IsAny<DockerSandbox>>(false);
no<IsAny<DockerSandbox['sessions']>>(false);
no<IsAny<SessionPool>>(false);
no<IsAny<SshSandbox>>(false);
no<IsAny<SshSandbox['connection']>>(false);
no<IsAny<DockerConfig>>(false);
no<IsAny<SshConfig['auth']>>(false);
no<IsAny<DockerResolvedConfig['docker']>>(false);
