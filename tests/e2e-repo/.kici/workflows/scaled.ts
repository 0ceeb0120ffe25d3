import { workflow, job, step, push } from '@kici-dev/sdk';

// Runs only on agents an auto-scaler starts (label `scaled`).
export default workflow('scaled', {
  on: push({ branches: 'scaled' }),
  jobs: [
    job('build', {
      runsOn: 'scaled',
      steps: [
        step('hello', async ({ $ }) => {
          await $`echo hello from a spawned agent`;
        }),
      ],
    }),
  ],
});
