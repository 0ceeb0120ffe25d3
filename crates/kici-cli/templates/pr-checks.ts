import { workflow, job, step, pr } from '@kici-dev/sdk';

// Runs on pull requests into main: `lint`, then `test` once it passed.
// Try it: `kici preview pr` for a dry run, `kici run local pr` to run it here.
export default workflow('pr-checks', {
  on: pr({ target: 'main' }),
  jobs: [
    job('lint', {
      runsOn: 'kici:os:linux',
      steps: [
        step('lint', async ({ $ }) => {
          await $`echo "replace me with your linter, e.g. npm run lint"`;
        }),
      ],
    }),
    job('test', {
      runsOn: 'kici:os:linux',
      needs: ['lint'],
      steps: [
        step('test', async ({ $ }) => {
          await $`echo "replace me with your tests, e.g. npm test"`;
        }),
      ],
    }),
  ],
});
