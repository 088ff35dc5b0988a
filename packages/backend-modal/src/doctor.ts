/** What the modal backend needs: credentials, and a control plane that answers them. */
import type { DoctorCheck, DoctorReport } from '@agentbox/core';
import type { ModalClient } from 'modal';
import { modalClient } from './client.js';
import type { ModalResolvedConfig } from './config.js';
import { modalEnforcement } from './enforcement.js';

export async function doctorModal({ config }: { config: ModalResolvedConfig }): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const controls = modalEnforcement({});
  let client: ModalClient;
  try {
    client = modalClient(config, { backend: 'modal', operation: 'doctor' });
  } catch (error) {
    checks.push({ name: 'credentials', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls };
  }
  checks.push({ name: 'credentials', ok: true, detail: 'a token id and secret' });
  try {
    const app = await client.apps.fromName(config.appName, { createIfMissing: true });
    checks.push({
      name: 'api',
      ok: true,
      detail: `the control plane answers; app ${config.appName} is ${app.appId}`,
    });
  } catch (error) {
    checks.push({ name: 'api', ok: false, detail: (error as Error).message });
  } finally {
    client.close();
  }
  return { ok: checks.every((c) => c.ok), checks, controls };
}
