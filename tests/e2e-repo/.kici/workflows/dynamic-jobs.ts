import { readdirSync } from 'node:fs';
import { workflow, job, step, push, dynamicJob } from '@kici-dev/sdk';

// One job per directory of packages/, decided at run time on an agent.
export default workflow('dynamic-jobs', {
  on: push({ branches: 'dynamic-jobs' }),
  jobs: [
    dynamicJob('packages', async () =>
      readdirSync('packages')
        .sort()
        .map((name) =>
          job(`check-${name}`, {
            runsOn: 'kici:os:linux',
            steps: [step('check', async ({ log }) => log.info(`checked ${name}`))],
          }),
        ),
    ),
  ],
});
