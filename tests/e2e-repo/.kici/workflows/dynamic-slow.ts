import { workflow, job, step, push } from '@kici-dev/sdk';

// The matrix function never returns in time (the test gives it 500 ms).
export default workflow('dynamic-slow', {
  on: push({ branches: 'dynamic-slow' }),
  jobs: [
    job('test', {
      runsOn: 'kici:os:linux',
      matrix: () => new Promise<string[]>((resolve) => setTimeout(() => resolve(['late']), 30_000)),
      steps: [step('run', async ({ log }) => log.info('unreachable'))],
    }),
  ],
});
