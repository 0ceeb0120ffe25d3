import { workflow, job, step, push } from '@kici-dev/sdk';

// Compiles with 2 combinations; the test edits the lock file to 289 (17 × 17).
export default workflow('big-matrix', {
  on: push({ branches: 'big-matrix' }),
  jobs: [
    job('m', {
      runsOn: 'kici:os:linux',
      matrix: { a: ['1'], b: ['1', '2'] },
      steps: [step('run', async ({ log }) => log.info('never at this size'))],
    }),
  ],
});
