/** The scrub report both stores build: which objects are damaged, and which checkpoints that breaks. */
import type { InterruptedRollback } from '../../sandbox.js';
import type { CheckpointVerifyReport, DamagedManifest } from '../../types.js';

export interface VerifyInput {
  /** Every manifest that parsed, with the objects it names (oldest first is not required). */
  manifests: readonly { id: string; objects: readonly string[] }[];
  damagedManifests: DamagedManifest[];
  /** Hash the given objects; answers the damaged ones only. */
  check(objects: readonly string[]): Promise<ReadonlyMap<string, 'missing' | 'mismatch'>>;
  interruptedRollback: InterruptedRollback | undefined;
}

export async function buildVerifyReport(input: VerifyInput): Promise<CheckpointVerifyReport> {
  const users = new Map<string, string[]>();
  for (const m of input.manifests)
    for (const object of new Set(m.objects)) users.set(object, [...(users.get(object) ?? []), m.id]);
  const bad = await input.check([...users.keys()]);
  const broken = new Set<string>();
  const damagedObjects = [...bad]
    .map(([object, reason]) => {
      const checkpoints = (users.get(object) ?? []).sort();
      for (const id of checkpoints) broken.add(id);
      return { object, reason, checkpoints };
    })
    .sort((a, b) => a.object.localeCompare(b.object));
  const damagedManifests = [...input.damagedManifests].sort((a, b) => a.id.localeCompare(b.id));
  return {
    ok: damagedObjects.length === 0 && damagedManifests.length === 0,
    // Ids start with a base-36 time, so their order is creation order.
    intact: input.manifests
      .map((m) => m.id)
      .filter((id) => !broken.has(id))
      .sort(),
    damagedManifests,
    damagedObjects,
    objectsChecked: users.size,
    interruptedRollback: input.interruptedRollback,
  };
}
