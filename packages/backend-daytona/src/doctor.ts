/** What the daytona backend needs: credentials, an endpoint that answers, and the snapshot it starts from. */
import type { DoctorCheck, DoctorReport } from '@agentbox/core';
import { connectDaytona } from './client.js';
import type { DaytonaResolvedConfig } from './config.js';
import { daytonaEnforcement } from './enforcement.js';
import { MANAGED_LABEL } from './labels.js';

export async function doctorDaytona({ config }: { config: DaytonaResolvedConfig }): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const controls = daytonaEnforcement({}, undefined);
  let daytona: ReturnType<typeof connectDaytona>;
  try {
    daytona = connectDaytona(config, { backend: 'daytona', operation: 'doctor' });
  } catch (error) {
    checks.push({ name: 'credentials', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls };
  }
  checks.push({ name: 'credentials', ok: true, detail: 'an API key or JWT is configured' });
  try {
    let count = 0;
    for await (const _ of daytona.list({ labels: { [MANAGED_LABEL]: 'true' }, limit: 100 })) count++;
    checks.push({ name: 'api', ok: true, detail: `the API answers; ${count} agentbox sandbox(es) exist` });
  } catch (error) {
    checks.push({ name: 'api', ok: false, detail: (error as Error).message });
  }
  if (config.snapshot) {
    checks.push(
      await daytona.snapshot.get(config.snapshot).then(
        (found): DoctorCheck => ({
          name: 'snapshot',
          ok: found.state === 'active',
          detail: `${config.snapshot} is ${found.state}`,
        }),
        (error): DoctorCheck => ({
          name: 'snapshot',
          ok: false,
          detail: `${config.snapshot}: ${(error as Error).message}`,
        }),
      ),
    );
  }
  return { ok: checks.every((c) => c.ok), checks, controls };
}
