/**
 * The object store of the Kubernetes stand-in: typed resources kept by namespace and name, with
 * the metadata an API server fills in (uid, resourceVersion, creationTimestamp, generation),
 * label selectors, merge and JSON patches, and the Status bodies of its refusals.
 */
import { randomUUID } from 'node:crypto';

export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: KubeMeta;
};

export interface KubeMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  [key: string]: unknown;
}

/** A refusal, answered as a `Status` object with its HTTP code (what client-node turns into an ApiException). */
export class KubeFailure extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** A resource type as the URL names it (`pods`), with its kind and group version. */
export interface ResourceType {
  plural: string;
  kind: string;
  apiVersion: string;
  namespaced: boolean;
  /** Throws KubeFailure(422) for an object a real API server would refuse. */
  validate?(obj: KubeObject): void;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function invalid(
  kind: string,
  name: string,
  causes: { field: string; message: string }[],
): KubeFailure {
  return new KubeFailure(
    422,
    'Invalid',
    `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
    { name, kind, causes: causes.map((c) => ({ reason: 'FieldValueInvalid', ...c })) },
  );
}

/** Checks every kind shares (the name and the labels), then the type's own; all causes in one 422. */
function validateObject(type: ResourceType, obj: KubeObject): void {
  const { name, labels } = obj.metadata;
  const causes: { field: string; message: string }[] = [];
  const pattern = type.plural === 'pods' || type.plural === 'namespaces' ? DNS_LABEL : DNS_SUBDOMAIN;
  if (!name || name.length > 253 || !pattern.test(name))
    causes.push({
      field: 'metadata.name',
      message: `Invalid value: "${name}": must be a lowercase RFC 1123 name`,
    });
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(key) || key.split('/').pop()!.length > 63)
      causes.push({ field: 'metadata.labels', message: `Invalid value: "${key}": not a qualified name` });
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value))
      causes.push({
        field: 'metadata.labels',
        message: `Invalid value: "${value}": not a valid label value`,
      });
  }
  try {
    type.validate?.(obj);
  } catch (error) {
    if (!(error instanceof KubeFailure && error.code === 422)) throw error;
    causes.push(...((error.details?.causes ?? []) as { field: string; message: string }[]));
  }
  if (causes.length > 0) throw invalid(type.kind, name ?? '', causes);
}

/** One parsed requirement of a label selector. */
type Requirement = { key: string; op: '=' | '!=' | 'exists' | '!exists' | 'in' | 'notin'; values: string[] };

/** Parse `a=b,c!=d,e,!f,g in (x,y),h notin (z)`; a malformed selector is a 400. */
export function parseSelector(text: string | null): Requirement[] {
  if (!text) return [];
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((raw) => {
    const part = raw.trim();
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] };
    m = /^(!?)([^=!\s()]+)$/.exec(part);
    if (m) return { key: m[2]!, op: m[1] ? '!exists' : 'exists', values: [] };
    throw new KubeFailure(400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(part)}`);
  });
}

export function matches(labels: Record<string, string> | undefined, selector: Requirement[]): boolean {
  const l = labels ?? {};
  return selector.every(({ key, op, values }) => {
    const has = Object.hasOwn(l, key);
    switch (op) {
      case '=':
        return has && l[key] === values[0];
      case '!=':
        return !has || l[key] !== values[0];
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && values.includes(l[key]!);
      default:
        return !has || !values.includes(l[key]!);
    }
  });
}

/** RFC 7386: null removes, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** RFC 6902 add, replace, remove and test; other operations are refused. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new KubeFailure(400, 'BadRequest', 'a JSON patch must be an array');
  const doc = structuredClone(target) as Record<string, unknown>;
  for (const op of ops as { op: string; path: string; value?: unknown }[]) {
    const keys = String(op.path)
      .split('/')
      .slice(1)
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop();
    if (last === undefined) throw new KubeFailure(400, 'BadRequest', `bad patch path ${op.path}`);
    let parent: Record<string, unknown> = doc;
    for (const key of keys) {
      const next = parent[key];
      if (!next || typeof next !== 'object')
        throw new KubeFailure(422, 'Invalid', `the patch path ${op.path} does not exist`);
      parent = next as Record<string, unknown>;
    }
    const isArray = Array.isArray(parent);
    switch (op.op) {
      case 'add':
        if (isArray)
          (parent as unknown as unknown[]).splice(
            last === '-' ? (parent as unknown as unknown[]).length : Number(last),
            0,
            op.value,
          );
        else parent[last] = op.value;
        break;
      case 'replace':
        if (!(last in parent))
          throw new KubeFailure(422, 'Invalid', `the patch path ${op.path} does not exist`);
        parent[last] = op.value;
        break;
      case 'remove':
        if (!(last in parent))
          throw new KubeFailure(422, 'Invalid', `the patch path ${op.path} does not exist`);
        if (isArray) (parent as unknown as unknown[]).splice(Number(last), 1);
        else delete parent[last];
        break;
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op.value))
          throw new KubeFailure(422, 'Invalid', `test of ${op.path} failed`);
        break;
      default:
        throw new KubeFailure(400, 'BadRequest', `the JSON patch operation ${op.op} is not supported here`);
    }
  }
  return doc;
}

/** Every object of every type, with one resourceVersion counter, as etcd would give. */
export class ObjectStore {
  readonly #objects = new Map<string, KubeObject>();
  #version = 1;

  #key(type: ResourceType, namespace: string | undefined, name: string): string {
    return `${type.apiVersion}/${type.plural}/${namespace ?? ''}/${name}`;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const found = this.#objects.get(this.#key(type, namespace, name));
    if (!found)
      throw new KubeFailure(404, 'NotFound', `${type.plural} "${name}" not found`, {
        name,
        kind: type.plural,
      });
    return found;
  }

  find(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#objects.get(this.#key(type, namespace, name));
  }

  list(type: ResourceType, namespace: string | undefined, selector: Requirement[] = []): KubeObject[] {
    const prefix = `${type.apiVersion}/${type.plural}/`;
    return [...this.#objects.entries()]
      .filter(
        ([key, obj]) =>
          key.startsWith(prefix) && (namespace === undefined || obj.metadata.namespace === namespace),
      )
      .map(([, obj]) => obj)
      .filter((obj) => matches(obj.metadata.labels, selector));
  }

  /** Every object (any type) that names `uid` as an owner: what garbage collection removes with it. */
  dependents(uid: string): KubeObject[] {
    return [...this.#objects.values()].filter((obj) =>
      obj.metadata.ownerReferences?.some((o) => o.uid === uid),
    );
  }

  create(type: ResourceType, namespace: string | undefined, body: Record<string, unknown>): KubeObject {
    const meta = (body.metadata ?? {}) as Partial<KubeMeta>;
    let name = meta.name;
    if (!name && typeof meta.generateName === 'string')
      name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (body.kind !== undefined && body.kind !== type.kind)
      throw new KubeFailure(400, 'BadRequest', `the body is a ${String(body.kind)}, not a ${type.kind}`);
    if (meta.namespace !== undefined && meta.namespace !== namespace)
      throw new KubeFailure(
        400,
        'BadRequest',
        'the namespace of the object does not match the namespace of the request',
      );
    const obj = {
      ...structuredClone(body),
      apiVersion: type.apiVersion,
      kind: type.kind,
      metadata: {
        ...structuredClone(meta),
        name: name ?? '',
        ...(type.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: String(++this.#version),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        generation: 1,
      },
    } as KubeObject;
    validateObject(type, obj);
    const key = this.#key(type, namespace, obj.metadata.name);
    if (this.#objects.has(key))
      throw new KubeFailure(409, 'AlreadyExists', `${type.plural} "${obj.metadata.name}" already exists`, {
        name: obj.metadata.name,
        kind: type.plural,
      });
    this.#objects.set(key, obj);
    return obj;
  }

  /** Replace with `next` (a patch result or a status write); identity fields stay the server's. */
  update(
    type: ResourceType,
    current: KubeObject,
    next: Record<string, unknown>,
    validate = true,
  ): KubeObject {
    const meta = (next.metadata ?? {}) as Partial<KubeMeta>;
    const obj = {
      ...next,
      apiVersion: type.apiVersion,
      kind: type.kind,
      metadata: {
        ...meta,
        name: current.metadata.name,
        ...(type.namespaced ? { namespace: current.metadata.namespace } : {}),
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        resourceVersion: String(++this.#version),
        generation:
          (current.metadata.generation ?? 1) +
          (JSON.stringify(next.spec) === JSON.stringify(current.spec) ? 0 : 1),
      },
    } as KubeObject;
    if (validate) {
      validateObject(type, obj);
    }
    const key = this.#key(type, current.metadata.namespace, current.metadata.name);
    if (this.#objects.get(key) !== current)
      throw new KubeFailure(
        409,
        'Conflict',
        `the object ${current.metadata.name} has been modified; try again`,
      );
    this.#objects.set(key, obj);
    return obj;
  }

  remove(type: ResourceType, obj: KubeObject): boolean {
    return this.#objects.delete(this.#key(type, obj.metadata.namespace, obj.metadata.name));
  }
}
