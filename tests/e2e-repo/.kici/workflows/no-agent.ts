import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('no-agent', {
  on: push({ branches: 'no-agent' }),
  jobs: [
    job('gpu-job', {
      runsOn: 'no-such-label',
      steps: [step('never', async ({ log }) => log.info('never'))],
    }),
  ],
});
