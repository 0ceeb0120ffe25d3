import { workflow, job, step, push, pr } from '@kici-dev/sdk';

// Runs on every push and pull request. Try it: `kici run local push`.
export default workflow('hello-world', {
  on: [push(), pr()],
  jobs: [
    job('greet', {
      runsOn: 'kici:os:linux',
      steps: [
        step('say-hello', async ({ $, log }) => {
          await $`echo Hello, World!`;
          log.info('done');
        }),
      ],
    }),
  ],
});
