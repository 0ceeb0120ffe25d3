import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('step-timeout', {
  on: push(),
  jobs: [
    job('slow', {
      runsOn: 'kici:os:linux',
      steps: [
        step('too-slow', {
          timeout: 300,
          run: async ({ $ }) => {
            await $`echo waiting; sleep 30`;
          },
        }),
      ],
    }),
  ],
});
