import { workflow, job, step, push, rule } from '@kici-dev/sdk';

export default workflow('rule-skip', {
  on: push(),
  jobs: [
    job('always-runs', {
      runsOn: 'kici:os:linux',
      steps: [step('hello', async ({ log }) => log.info('ran'))],
    }),
    job('release-only', {
      runsOn: 'kici:os:linux',
      rules: [rule('only on release branches', ({ event }) => (event.targetBranch ?? '').startsWith('release/'))],
      steps: [step('publish', async ({ log }) => log.info('publishing'))],
    }),
  ],
});
