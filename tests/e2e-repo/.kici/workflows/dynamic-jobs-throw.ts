import { workflow, push, dynamicJob } from '@kici-dev/sdk';

export default workflow('dynamic-jobs-throw', {
  on: push({ branches: 'dynamic-jobs-throw' }),
  jobs: [
    dynamicJob('packages', async () => {
      throw new Error('cannot list packages');
    }),
  ],
});
