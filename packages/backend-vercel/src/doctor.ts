/** What the vercel backend needs: credentials, and an API that answers them. */
import type { DoctorCheck, DoctorReport } from '@agentbox/core';
import { Sandbox } from '@vercel/sandbox';
import { type VercelCredentials, vercelCredentials } from './client.js';
import type { VercelResolvedConfig } from './config.js';
import { vercelEnforcement } from './enforcement.js';
import { MANAGED_LABEL } from './labels.js';

export async function doctorVercel({ config }: { config: VercelResolvedConfig }): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const controls = vercelEnforcement({}, undefined);
  let credentials: VercelCredentials;
  try {
    credentials = vercelCredentials(config, { backend: 'vercel', operation: 'doctor' });
  } catch (error) {
    checks.push({ name: 'credentials', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls };
  }
  checks.push({
    name: 'credentials',
    ok: true,
    detail: credentials.token ? 'a token with team and project ids' : 'OIDC (VERCEL_OIDC_TOKEN)',
  });
  try {
    const listed = await Sandbox.list({ ...credentials, tags: { [MANAGED_LABEL]: 'true' } });
    checks.push({
      name: 'api',
      ok: true,
      detail: `the API answers; ${listed.sandboxes.length} agentbox sandbox(es) on the first page`,
    });
  } catch (error) {
    checks.push({ name: 'api', ok: false, detail: (error as Error).message });
  }
  return { ok: checks.every((c) => c.ok), checks, controls };
}
