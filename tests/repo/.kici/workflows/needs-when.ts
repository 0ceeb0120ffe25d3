import { workflow, job, step, push } from '@kici-dev/sdk';

const build = job('build', {
  runsOn: 'kici:os:linux',
  steps: [step('fail', async ({ $ }) => { await $`exit 2`; })],
});

export default workflow('needs-when', {
  on: push(),
  jobs: [
    build,
    job('report', {
      runsOn: 'kici:os:linux',
      needs: [{ name: 'build', when: 'always' }],
      steps: [step('summary', async ({ log, needs }) => log.info(`build finished: ${needs?.build?.status}`))],
    }),
    job('deploy', {
      runsOn: 'kici:os:linux',
      needs: [build],
      steps: [step('ship', async ({ log }) => log.info('shipping'))],
    }),
  ],
});
