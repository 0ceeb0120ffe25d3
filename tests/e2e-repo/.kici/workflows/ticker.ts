import { workflow, job, step, push } from '@kici-dev/sdk';

// A step that prints a line every 300 ms, for watching live logs.
export default workflow('ticker', {
  on: push({ branches: 'ticker' }),
  jobs: [
    job('tick', {
      runsOn: 'kici:os:linux',
      steps: [
        step('count', async ({ $ }) => {
          await $`for i in $(seq 1 20); do echo "tick $i"; sleep 0.3; done`;
        }),
      ],
    }),
  ],
});
