import { workflow, job, step, push } from '@kici-dev/sdk';

// Five independent jobs for scaler-spawned agents, to exercise the agent caps.
export default workflow('scaled-five', {
  on: push({ branches: 'scaled-five' }),
  jobs: ['one', 'two', 'three', 'four', 'five'].map((name) =>
    job(name, {
      runsOn: 'scaled',
      steps: [
        step('work', async ({ $ }) => {
          await $`sleep 0.3`;
        }),
      ],
    }),
  ),
});
