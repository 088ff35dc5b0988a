/** The resource types the stand-in serves, and the checks a real API server makes on create. */

import { parseQuantity } from './quantity.js';
import { invalid, type KubeObject, type ResourceType } from './store.js';

type Container = { name?: string; image?: string; resources?: { limits?: Record<string, unknown> } };

function validatePodSpec(kind: string, name: string, spec: unknown, field: string): void {
  const causes: { field: string; message: string }[] = [];
  const s = (spec ?? {}) as {
    containers?: Container[];
    initContainers?: Container[];
    volumes?: {
      name?: string;
      emptyDir?: unknown;
      secret?: { secretName?: string; items?: { key?: string; path?: string }[] };
    }[];
    activeDeadlineSeconds?: unknown;
  };
  // A relative path inside a volume, never leaving it.
  const inside = (path: unknown) =>
    typeof path === 'string' && path !== '' && !path.startsWith('/') && !path.split('/').includes('..');
  (s.volumes ?? []).forEach((v, i) => {
    const at = `${field}.volumes[${i}]`;
    if (!v.emptyDir && !v.secret)
      causes.push({ field: at, message: 'the stand-in serves emptyDir and secret volumes only' });
    if (v.secret && !v.secret.secretName)
      causes.push({ field: `${at}.secret.secretName`, message: 'Required value' });
    (v.secret?.items ?? []).forEach((item, j) => {
      if (!item.key) causes.push({ field: `${at}.secret.items[${j}].key`, message: 'Required value' });
      if (!inside(item.path))
        causes.push({
          field: `${at}.secret.items[${j}].path`,
          message: "must be a relative path without '..'",
        });
    });
  });
  if (!Array.isArray(s.containers) || s.containers.length === 0)
    causes.push({ field: `${field}.containers`, message: 'Required value' });
  const volumes = new Set((s.volumes ?? []).map((v) => v.name));
  const seen = new Set<string>();
  const check = (list: 'containers' | 'initContainers') => (c: Container, i: number) => {
    if (!c.name || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(c.name))
      causes.push({ field: `${field}.${list}[${i}].name`, message: 'Invalid value: must be a DNS label' });
    else if (seen.has(c.name))
      causes.push({ field: `${field}.${list}[${i}].name`, message: `Duplicate value: "${c.name}"` });
    seen.add(c.name ?? '');
    if (!c.image) causes.push({ field: `${field}.${list}[${i}].image`, message: 'Required value' });
    for (const [key, value] of Object.entries(c.resources?.limits ?? {})) {
      try {
        parseQuantity(value, key);
      } catch (error) {
        causes.push({
          field: `${field}.${list}[${i}].resources.limits[${key}]`,
          message: (error as Error).message,
        });
      }
    }
    for (const m of (c as { volumeMounts?: { name?: string; subPath?: string }[] }).volumeMounts ?? []) {
      if (!volumes.has(m.name))
        causes.push({
          field: `${field}.${list}[${i}].volumeMounts.name`,
          message: `Not found: "${m.name}"`,
        });
      if (m.subPath && !inside(m.subPath))
        causes.push({
          field: `${field}.${list}[${i}].volumeMounts.subPath`,
          message: "must be a relative path without '..'",
        });
    }
  };
  (s.containers ?? []).forEach(check('containers'));
  (s.initContainers ?? []).forEach(check('initContainers'));
  const deadline = s.activeDeadlineSeconds;
  if (deadline !== undefined && !(Number.isInteger(deadline) && (deadline as number) > 0))
    causes.push({ field: `${field}.activeDeadlineSeconds`, message: 'must be a positive integer' });
  if (causes.length > 0) throw invalid(kind, name, causes);
}

export const PODS: ResourceType = {
  plural: 'pods',
  kind: 'Pod',
  apiVersion: 'v1',
  namespaced: true,
  validate: (obj) => validatePodSpec('Pod', obj.metadata.name, obj.spec, 'spec'),
};

export const SECRETS: ResourceType = {
  plural: 'secrets',
  kind: 'Secret',
  apiVersion: 'v1',
  namespaced: true,
  validate(obj) {
    let bytes = 0;
    for (const [key, value] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
      if (!/^[-._a-zA-Z0-9]+$/.test(key))
        throw invalid('Secret', obj.metadata.name, [
          {
            field: `data[${key}]`,
            message: "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
          },
        ]);
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
        throw invalid('Secret', obj.metadata.name, [{ field: `data[${key}]`, message: 'must be base64' }]);
      bytes += Buffer.byteLength(value, 'base64');
    }
    if (bytes > 1024 * 1024)
      throw invalid('Secret', obj.metadata.name, [
        { field: 'data', message: `Too long: must have at most 1048576 bytes (has ${bytes})` },
      ]);
  },
};

export const NAMESPACES: ResourceType = {
  plural: 'namespaces',
  kind: 'Namespace',
  apiVersion: 'v1',
  namespaced: false,
};

export const NETWORK_POLICIES: ResourceType = {
  plural: 'networkpolicies',
  kind: 'NetworkPolicy',
  apiVersion: 'networking.k8s.io/v1',
  namespaced: true,
  validate(obj) {
    const spec = obj.spec as { podSelector?: unknown } | undefined;
    if (!spec || typeof spec.podSelector !== 'object')
      throw invalid('NetworkPolicy', obj.metadata.name, [
        { field: 'spec.podSelector', message: 'Required value' },
      ]);
  },
};

export const RUNTIME_CLASSES: ResourceType = {
  plural: 'runtimeclasses',
  kind: 'RuntimeClass',
  apiVersion: 'node.k8s.io/v1',
  namespaced: false,
};

export const SANDBOXES: ResourceType = {
  plural: 'sandboxes',
  kind: 'Sandbox',
  apiVersion: 'agents.x-k8s.io/v1beta1',
  namespaced: true,
  validate(obj) {
    const spec = obj.spec as
      | { podTemplate?: { spec?: unknown }; shutdownTime?: unknown; shutdownPolicy?: unknown }
      | undefined;
    validatePodSpec('Sandbox', obj.metadata.name, spec?.podTemplate?.spec, 'spec.podTemplate.spec');
    if (spec?.shutdownTime !== undefined && Number.isNaN(Date.parse(String(spec.shutdownTime))))
      throw invalid('Sandbox', obj.metadata.name, [
        { field: 'spec.shutdownTime', message: 'must be an RFC 3339 time' },
      ]);
    if (spec?.shutdownPolicy !== undefined && !['Retain', 'Delete'].includes(String(spec.shutdownPolicy)))
      throw invalid('Sandbox', obj.metadata.name, [
        { field: 'spec.shutdownPolicy', message: 'must be Retain or Delete' },
      ]);
  },
};

/** agent-sandbox's extensions: templates, warm pools of their Sandboxes, and claims on a pool. */
const EXTENSIONS = 'extensions.agents.x-k8s.io/v1beta1';

export const SANDBOX_TEMPLATES: ResourceType = {
  plural: 'sandboxtemplates',
  kind: 'SandboxTemplate',
  apiVersion: EXTENSIONS,
  namespaced: true,
  validate(obj) {
    const spec = obj.spec as { podTemplate?: { spec?: unknown } } | undefined;
    validatePodSpec('SandboxTemplate', obj.metadata.name, spec?.podTemplate?.spec, 'spec.podTemplate.spec');
  },
};

export const SANDBOX_WARM_POOLS: ResourceType = {
  plural: 'sandboxwarmpools',
  kind: 'SandboxWarmPool',
  apiVersion: EXTENSIONS,
  namespaced: true,
  validate(obj) {
    const spec = obj.spec as { replicas?: unknown; sandboxTemplateRef?: { name?: unknown } } | undefined;
    const causes: { field: string; message: string }[] = [];
    if (typeof spec?.sandboxTemplateRef?.name !== 'string' || !spec.sandboxTemplateRef.name)
      causes.push({ field: 'spec.sandboxTemplateRef.name', message: 'Required value' });
    if (spec?.replicas !== undefined && !(Number.isInteger(spec.replicas) && (spec.replicas as number) >= 0))
      causes.push({ field: 'spec.replicas', message: 'must be an integer >= 0' });
    if (causes.length > 0) throw invalid('SandboxWarmPool', obj.metadata.name, causes);
  },
};

export const SANDBOX_CLAIMS: ResourceType = {
  plural: 'sandboxclaims',
  kind: 'SandboxClaim',
  apiVersion: EXTENSIONS,
  namespaced: true,
  validate(obj) {
    const spec = obj.spec as
      | { warmPoolRef?: { name?: unknown }; lifecycle?: { shutdownTime?: unknown; shutdownPolicy?: unknown } }
      | undefined;
    const causes: { field: string; message: string }[] = [];
    if (typeof spec?.warmPoolRef?.name !== 'string' || !spec.warmPoolRef.name)
      causes.push({ field: 'spec.warmPoolRef.name', message: 'Required value' });
    const life = spec?.lifecycle;
    if (life?.shutdownTime !== undefined && Number.isNaN(Date.parse(String(life.shutdownTime))))
      causes.push({ field: 'spec.lifecycle.shutdownTime', message: 'must be an RFC 3339 time' });
    if (
      life?.shutdownPolicy !== undefined &&
      !['Delete', 'DeleteForeground', 'Retain'].includes(String(life.shutdownPolicy))
    )
      causes.push({
        field: 'spec.lifecycle.shutdownPolicy',
        message: 'must be Delete, DeleteForeground or Retain',
      });
    if (causes.length > 0) throw invalid('SandboxClaim', obj.metadata.name, causes);
  },
};

/** The URL prefix of a group version: `/api/v1` or `/apis/<group>/<version>`. */
export function prefixOf(type: ResourceType): string {
  return type.apiVersion === 'v1' ? '/api/v1' : `/apis/${type.apiVersion}`;
}

export type { KubeObject };
