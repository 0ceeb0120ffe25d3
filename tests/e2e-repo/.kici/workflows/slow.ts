import { workflow, job, step, push } from '@kici-dev/sdk';

// Prints a numbered line every 100 ms for a while: long enough to kill things mid-step.
export default workflow('slow', {
  on: push({ branches: 'slow' }),
  jobs: [
    job('count', {
      runsOn: 'kici:os:linux',
      steps: [
        step('count', async ({ log }) => {
          for (let i = 1; i <= 40; i++) {
            log.info(`line ${i}`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }),
      ],
    }),
  ],
});
