/**
 * How the backend reaches the cluster: the kubeconfig (explicit, or client-node's default
 * search), the API clients, and the one table that maps API failures to typed errors.
 */
import {
  AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  Exec,
  KubeConfig,
  NetworkingV1Api,
  NodeV1Api,
  VersionApi,
} from '@kubernetes/client-node';
import type { KubernetesResolvedConfig } from './config.js';

export const SANDBOX_GROUP = { group: 'agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxes' } as const;
/** agent-sandbox's extensions: claims on a warm pool, the pools, and their templates. */
const EXTENSIONS = { group: 'extensions.agents.x-k8s.io', version: 'v1beta1' } as const;
export const CLAIM_GROUP = { ...EXTENSIONS, plural: 'sandboxclaims' } as const;
export const WARM_POOL_GROUP = { ...EXTENSIONS, plural: 'sandboxwarmpools' } as const;
export const TEMPLATE_GROUP = { ...EXTENSIONS, plural: 'sandboxtemplates' } as const;
/** On a claim: the name of the Sandbox (and of its pod) it was given. */
export const CLAIM_SANDBOX_ANNOTATION = 'agents.x-k8s.io/sandbox-name';

/** The API clients of one kubeconfig, and the namespace the backend works in. */
export interface Cluster {
  kc: KubeConfig;
  namespace: string;
  core: CoreV1Api;
  networking: NetworkingV1Api;
  custom: CustomObjectsApi;
  node: NodeV1Api;
  version: VersionApi;
  exec: Exec;
  /** The server URL, for messages. */
  server: string;
}

/** Load the kubeconfig once, at open (never in the middle of an operation). */
export function connect(config: KubernetesResolvedConfig, context: ErrorContext): Cluster {
  const kc = new KubeConfig();
  try {
    if (config.kubeconfigText) kc.loadFromString(config.kubeconfigText);
    else if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
    else kc.loadFromDefault();
    if (config.context) kc.setCurrentContext(config.context);
  } catch (error) {
    throw new InvalidArgumentError(`the kubeconfig could not be read: ${(error as Error).message}`, {
      ...context,
      cause: error,
      issues: ['config.kubeconfig: unreadable'],
    });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new InvalidArgumentError('the kubeconfig names no cluster for its current context', {
      ...context,
      issues: ['config.context: no cluster'],
    });
  const current = kc.getContextObject(kc.getCurrentContext());
  return {
    kc,
    namespace: config.namespace ?? current?.namespace ?? 'default',
    core: kc.makeApiClient(CoreV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    node: kc.makeApiClient(NodeV1Api),
    version: kc.makeApiClient(VersionApi),
    exec: new Exec(kc),
    server: cluster.server,
  };
}

/** The HTTP status of an API failure, if it is one. */
export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The message of the Status body the API server answered with, else the error's own. */
function messageOf(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
      if (body?.message) return `${body.reason ?? error.code}: ${body.message}`;
    } catch {
      // not JSON: the exception's message below
    }
    return `HTTP ${error.code}`;
  }
  return (error as Error)?.message ?? String(error);
}

/** An API failure as the typed error callers branch on. */
export function kubeFailure(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof AgentboxError) return error;
  const message = messageOf(error);
  const where = { ...context, cause: error };
  switch (statusOf(error)) {
    case 401:
      return new AuthenticationError(`the API server refused the credentials: ${message}`, where);
    case 403:
      return new PermissionDeniedError(message, where);
    case 404:
      return new NotFoundError(message, where);
    case 400:
    case 409:
    case 422:
      return new InvalidArgumentError(message, { ...where, issues: [message] });
    default:
      return new SandboxUnavailableError(`Kubernetes API: ${message}`, where);
  }
}
