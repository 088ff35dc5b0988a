/** Kubernetes resource quantities (`500m`, `2`, `256Mi`, `1G`) as numbers. */
import { KubeFailure } from './store.js';

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

export function parseQuantity(value: unknown, field: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  if (!m)
    throw new KubeFailure(
      422,
      'Invalid',
      `${field}: Invalid value: "${String(value)}": quantities must match the regular expression`,
    );
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}
