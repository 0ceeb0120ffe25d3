import { existsSync } from 'node:fs';
import { workflow, job, step, push } from '@kici-dev/sdk';

// Holds its step open until the test creates /tmp/kici-e2e-gate-<runId>: the run is surely
// running while the test looks at it.
export default workflow('gate', {
  on: push({ branches: 'gate' }),
  jobs: [
    job('wait', {
      runsOn: 'kici:os:linux',
      steps: [
        step('wait-for-gate', async ({ env, log }) => {
          log.info('before the gate');
          const gate = `/tmp/kici-e2e-gate-${env.KICI_RUN_ID}`;
          for (let i = 0; i < 1200 && !existsSync(gate); i++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          if (!existsSync(gate)) throw new Error('the gate never opened');
          log.info('after the gate');
        }),
      ],
    }),
  ],
});
