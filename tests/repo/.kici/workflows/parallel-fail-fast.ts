import { workflow, job, step, parallel, push } from '@kici-dev/sdk';

export default workflow('parallel-fail-fast', {
  on: push(),
  jobs: [
    job('checks', {
      runsOn: 'kici:os:linux',
      steps: [
        parallel(
          [
            step('fast-fail', async ({ $ }) => {
              await $`sleep 0.2; echo failing fast; exit 1`;
            }),
            step('slow', async ({ $ }) => {
              await $`echo slow started; sleep 30; echo slow finished`;
            }),
          ],
          { failFast: true, name: 'checks' },
        ),
      ],
    }),
  ],
});
