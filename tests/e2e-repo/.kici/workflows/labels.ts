import { workflow, job, step, push } from '@kici-dev/sdk';

// Two jobs for two kinds of agents, one after the other.
export default workflow('labels-dag', {
  on: push({ branches: 'labels' }),
  jobs: [
    job('build', {
      runsOn: 'builder',
      steps: [step('compile', async ({ log }) => log.info('built'))],
    }),
    job('test', {
      runsOn: 'tester',
      needs: ['build'],
      steps: [step('check', async ({ log, needs }) => log.info(`build was ${needs.build?.status}`))],
    }),
  ],
});
