import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('dynamic', {
  on: push({ branches: 'dynamic' }),
  jobs: [
    job('test', {
      runsOn: 'kici:os:linux',
      matrix: async () => ['x', 'y'],
      steps: [step('run', async ({ log, matrix }) => log.info(`value ${matrix.value}`))],
    }),
    job('after', {
      runsOn: 'kici:os:linux',
      needs: ['test'],
      steps: [step('done', async ({ log }) => log.info('after the matrix'))],
    }),
  ],
});
