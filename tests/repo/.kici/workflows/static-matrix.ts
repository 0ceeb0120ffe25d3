import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('static-matrix', {
  on: push(),
  jobs: [
    job('test', {
      runsOn: 'kici:os:linux',
      matrix: { os: ['linux', 'mac'], node: ['18', '20'] },
      steps: [
        step('show', async ({ matrix, log }) => {
          log.info(`os=${matrix?.os} node=${matrix?.node}`);
        }),
      ],
    }),
  ],
});
