import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('failing', {
  on: push({ branches: 'failing' }),
  jobs: [
    job('build', {
      runsOn: 'kici:os:linux',
      steps: [
        step('prepare', async ({ log }) => log.info('preparing')),
        step('compile', async ({ $ }) => {
          await $`echo compiling; exit 3`;
        }),
      ],
    }),
  ],
});
