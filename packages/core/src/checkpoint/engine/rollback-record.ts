/**
 * The record a restore leaves in the store while it changes the tree: which checkpoint it is
 * restoring. Present only between the first change and the last, so whoever finds it knows the
 * tree may be a mix of two states. Sealed like a manifest (MAC'd when the store has a key).
 */
import { z } from 'zod';
import type { InterruptedRollback } from '../../sandbox.js';
import { CHECKPOINT_ID } from './manifest.js';
import { unseal } from './seal.js';

const recordSchema = z.strictObject({
  rollbackTo: z.string().regex(CHECKPOINT_ID),
  startedAt: z.iso.datetime(),
});

/** The record's value for a restore of `checkpointId` starting now. */
export function rollbackRecord(checkpointId: string): z.infer<typeof recordSchema> {
  return { rollbackTo: checkpointId, startedAt: new Date().toISOString() };
}

/**
 * What a record file says. One that cannot be read back still means a rollback was cut short:
 * the checkpoint is then unknown (any successful rollback clears it).
 */
export function readRollbackRecord(file: string, key: Uint8Array | undefined): InterruptedRollback {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(unseal(file, key, undefined, {})));
    if (parsed.success) return { checkpointId: parsed.data.rollbackTo };
  } catch {
    // Damaged or forged: fall through to "unknown checkpoint".
  }
  return { checkpointId: undefined };
}
