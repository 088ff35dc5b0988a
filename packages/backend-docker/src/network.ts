/**
 * Network allowlist mode. Docker does not filter outbound traffic, so the sandbox gets no route
 * out at all: it sits alone on an internal bridge network whose host side has no IPv4 address
 * (`inhibit_ipv4`, so not even the host's own addresses answer), with IPv6 off and the embedded
 * DNS forwarding to nowhere. Each allowed host gets a small forwarder container on that network
 * and on an egress network (`bridge` by default); the sandbox resolves the host name to its
 * forwarder (an /etc/hosts entry) and the forwarder relays exactly the allowed ports to the real
 * host. A process that ignores proxy variables reaches the allowed host:port and nothing else.
 * A sentinel in the sandbox's network namespace reports what the sandbox dials off its network
 * on the allowed ports (egress-sentinel.ts).
 *
 * Limits: entries must be host names (an IP literal has no forwarder address to stand in for
 * it), and loopback names mean the sandbox itself.
 */
import { PolicyNotEnforceableError, SandboxUnavailableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import type { DockerClient } from './client.js';
import { startSentinel } from './egress-sentinel.js';
import { LABEL, labelsFor, names } from './labels.js';

const FORWARDS = 'agentbox.egress-forwards';

export interface EgressOptions {
  client: DockerClient;
  sandboxId: string;
  allow: readonly string[];
  /** Image of the forwarders: needs busybox `sh` and `nc` (with `-e`). */
  image: string;
  /** Network the forwarders reach the allowed hosts through. */
  egressNetwork: string;
  labels: Record<string, string>;
  createdAt: string;
  context: ErrorContext;
}

/** host → ports, from `host:port` entries. */
function byHost(allow: readonly string[]): Map<string, number[]> {
  const hosts = new Map<string, number[]>();
  for (const entry of allow) {
    const i = entry.lastIndexOf(':');
    const host = entry.slice(0, i).toLowerCase();
    const port = Number(entry.slice(i + 1));
    const ports = hosts.get(host) ?? [];
    if (!ports.includes(port)) ports.push(port);
    hosts.set(host, ports);
  }
  return hosts;
}

export class EgressAllowlist {
  readonly networkName: string;
  /** `host:ip` entries for the sandbox's /etc/hosts, known once `create` has run. */
  extraHosts: string[] = [];
  readonly #o: EgressOptions;

  constructor(options: EgressOptions) {
    this.#o = options;
    this.networkName = names.network(options.sandboxId);
  }

  /** Refuse, before anything is created, entries this mode cannot honour. */
  static validate(allow: readonly string[], context: ErrorContext): void {
    const bad: string[] = [];
    for (const entry of allow) {
      const i = entry.lastIndexOf(':');
      const host = entry.slice(0, i);
      const port = Number(entry.slice(i + 1));
      if (!(port >= 1 && port <= 65535)) bad.push(`${entry}: port out of range`);
      else if (/^\[|^[0-9.]+$/.test(host))
        bad.push(`${entry}: IP literals cannot be allowlisted, use a host name`);
      else if (/^(localhost|ip6-localhost|ip6-loopback)$/i.test(host))
        bad.push(`${entry}: loopback is the sandbox itself`);
    }
    if (bad.length > 0)
      throw new PolicyNotEnforceableError(
        `the docker backend cannot enforce the network allowlist: ${bad.join('; ')}`,
        {
          network: bad.join('; '),
        },
        context,
      );
  }

  async create(): Promise<void> {
    const { docker } = this.#o.client;
    await docker.createNetwork({
      Name: this.networkName,
      Driver: 'bridge',
      Internal: true,
      CheckDuplicate: true,
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
      Labels: labelsFor(this.#o.sandboxId, 'network', this.#o.createdAt, this.#o.labels),
    });
    const network = docker.getNetwork(this.networkName);
    let index = 0;
    for (const [host, ports] of byHost(this.#o.allow)) {
      const script = [
        "trap 'exit 0' TERM INT",
        ...ports.map((p) => `nc -ll -p ${p} -e nc "$1" ${p} &`),
        'wait',
      ].join('\n');
      const container = await docker.createContainer({
        name: `${names.proxy(this.#o.sandboxId)}-${index++}`,
        Image: this.#o.image,
        Entrypoint: [],
        Cmd: ['/bin/sh', '-c', script, 'agentbox-egress', host],
        User: '1000:1000',
        Labels: {
          ...labelsFor(this.#o.sandboxId, 'egress-proxy', this.#o.createdAt, this.#o.labels),
          [FORWARDS]: ports.map((p) => `${host}:${p}`).join(','),
        },
        HostConfig: {
          NetworkMode: this.#o.egressNetwork,
          ExtraHosts: ['host.docker.internal:host-gateway'],
          // Listen on low ports (443) without any capability.
          Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
          ReadonlyRootfs: true,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          PidsLimit: 256,
          Memory: 128 * 1024 * 1024,
          MemorySwap: 128 * 1024 * 1024,
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'none', Config: {} },
        },
      });
      await network.connect({ Container: container.id });
      await container.start();
      const info = await container.inspect();
      const ip = info.NetworkSettings.Networks[this.networkName]?.IPAddress;
      if (!ip)
        throw new SandboxUnavailableError(
          `the egress forwarder for ${host} got no address on the network ${this.networkName}: check that the network exists and has free addresses`,
          this.#o.context,
        );
      this.extraHosts.push(`${host}:${ip}`);
    }
  }

  /** Start the sentinel in the started sandbox container's network namespace (egress-sentinel.ts). */
  startSentinel(containerId: string): Promise<void> {
    return startSentinel({
      client: this.#o.client,
      sandboxId: this.#o.sandboxId,
      containerId,
      ports: [...new Set([...byHost(this.#o.allow).values()].flat())],
      image: this.#o.image,
      labels: this.#o.labels,
      createdAt: this.#o.createdAt,
      context: this.#o.context,
    });
  }

  /** What is really in place, for the enforcement report. */
  async observe(): Promise<{ internal: boolean; name: string; forwarding: string[]; sentinel: boolean }> {
    const { docker } = this.#o.client;
    const net = (await docker
      .getNetwork(this.networkName)
      .inspect()
      .catch(() => undefined)) as { Internal?: boolean; Options?: Record<string, string> } | undefined;
    const internal =
      net?.Internal === true && net.Options?.['com.docker.network.bridge.inhibit_ipv4'] === 'true';
    const forwarders: Docker.ContainerInfo[] = await docker.listContainers({
      filters: JSON.stringify({
        label: [`${LABEL.sandboxId}=${this.#o.sandboxId}`, `${LABEL.role}=egress-proxy`],
      }),
    });
    const forwarding = forwarders
      .filter((c) => c.State === 'running')
      .flatMap((c) => (c.Labels[FORWARDS] ?? '').split(',').filter(Boolean));
    const running = (name: string) =>
      docker
        .getContainer(name)
        .inspect()
        .then(
          (c) => c.State.Running,
          () => false,
        );
    const id = this.#o.sandboxId;
    const sentinel = (await running(names.sentinel(id))) && (await running(names.sentinelListener(id)));
    return { internal, name: this.networkName, forwarding, sentinel };
  }
}
