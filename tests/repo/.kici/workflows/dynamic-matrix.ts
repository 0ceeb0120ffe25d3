import { readdirSync } from 'node:fs';
import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('dynamic-matrix', {
  on: push(),
  jobs: [
    job('test', {
      runsOn: 'kici:os:linux',
      // One job per directory of packages/, read from the checkout.
      matrix: async () => readdirSync('packages').sort(),
      steps: [
        step('test-package', async ({ $, matrix }) => {
          await $`cat packages/${matrix?.value}/package.json`;
        }),
      ],
    }),
  ],
});
