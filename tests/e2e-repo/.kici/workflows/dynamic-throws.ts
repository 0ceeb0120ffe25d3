import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('dynamic-throws', {
  on: push({ branches: 'dynamic-throws' }),
  jobs: [
    job('test', {
      runsOn: 'kici:os:linux',
      matrix: async () => {
        throw new Error('no packages found');
      },
      steps: [step('run', async ({ log }) => log.info('unreachable'))],
    }),
  ],
});
