import { workflow, job, step, push } from '@kici-dev/sdk';
import { Tone, render, type Greeting } from '../lib/greeting';

interface Target {
  env: string;
  replicas: number;
}

enum Stage {
  Build,
  Deploy,
}

class Pipeline<T extends Target> {
  constructor(private readonly target: T) {}
  describe(): string {
    return `${this.target.env} x${this.target.replicas}`;
  }
}

const raw: unknown = { env: 'staging', replicas: 2 };
const target = raw as Target;
const greeting: Greeting = { name: 'KiCI', tone: Tone.Loud };

export default workflow('typescript-features', {
  on: push(),
  jobs: [
    job('typed', {
      runsOn: 'kici:os:linux',
      steps: [
        step('render', async ({ log }) => {
          log.info(render(greeting));
          log.info(`stage ${Stage[Stage.Deploy]} to ${new Pipeline(target).describe()}`);
        }),
      ],
    }),
  ],
});
