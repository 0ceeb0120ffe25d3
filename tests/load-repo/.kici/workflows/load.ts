import { workflow, job, step, push } from '@kici-dev/sdk';

// No-op jobs for simulated agents (label `load`); the harness rewrites the shard list.
export default workflow('load', {
  on: push({ branches: 'load' }),
  jobs: [
    job('noop', {
      runsOn: 'load',
      matrix: { shard: ['0'] },
      steps: [step('noop', async () => {})],
    }),
  ],
});
