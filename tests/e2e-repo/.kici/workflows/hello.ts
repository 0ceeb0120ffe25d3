import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('hello-world', {
  on: push({ branches: 'hello' }),
  jobs: [
    job('greet', {
      runsOn: 'kici:os:linux',
      steps: [
        step('say-hello', async ({ $ }) => {
          await $`echo Hello, World!`;
        }),
      ],
    }),
  ],
});
