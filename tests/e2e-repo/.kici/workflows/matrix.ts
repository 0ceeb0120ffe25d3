import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { workflow, job, step, push } from '@kici-dev/sdk';

// Both children must run at the same time: each writes its marker and waits for the other's.
export default workflow('matrix-parallel', {
  on: push({ branches: 'matrix' }),
  jobs: [
    job('fan', {
      runsOn: 'pool',
      matrix: ['a', 'b'],
      steps: [
        step('meet', async ({ matrix, env, log }) => {
          const dir = join('/tmp', `kici-e2e-barrier-${env.KICI_RUN_ID}`);
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, matrix.value), 'here');
          const other = matrix.value === 'a' ? 'b' : 'a';
          for (let i = 0; i < 600 && !existsSync(join(dir, other)); i++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          if (!existsSync(join(dir, other))) throw new Error(`${other} never ran alongside ${matrix.value}`);
          log.info(`${matrix.value} met ${other}`);
        }),
      ],
    }),
  ],
});
