import { workflow, job, step, push } from '@kici-dev/sdk';

// Jobs no agent fits (label `nobody`): a backlog the dispatcher must not read on every pass.
// The harness rewrites the shard list.
export default workflow('backlog', {
  on: push({ branches: 'backlog' }),
  jobs: [
    job('waiting', {
      runsOn: 'nobody',
      matrix: { shard: ['0'] },
      steps: [step('noop', async () => {})],
    }),
  ],
});
