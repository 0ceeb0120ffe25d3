// Dispatch and schedule inputs: a map of schemas or a defineDispatchInputs() handle on
// dispatch() and schedule(), and the handle's from(ctx) typing each input from its schema in
// steps, hooks and rules.
import { defineDispatchInputs, dispatch, job, rule, schedule, step, workflow, z } from '@kici-dev/sdk';

/** True when A and B are the same type (not merely assignable to each other). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(check: Equal<A, B>) => check;

const inputs = defineDispatchInputs({
  environment: z.enum(['staging', 'production']).default('staging'),
  replicas: z.number().int().min(1).max(10).optional(),
  dryRun: z.boolean().default(false),
  note: z.string().max(200).nullable().describe('why this deploy'),
  mode: z.literal('full'),
  tag: z.string().regex(/^v\d+$/).nullable().optional(),
});

export const deploy = workflow('deploy-on-demand', {
  on: dispatch({ types: 'deploy', inputs }),
  jobs: [
    job('deploy', {
      runsOn: 'kici:os:linux',
      rules: [rule('production only', (ctx) => inputs.from(ctx).environment === 'production')],
      cleanup: async (ctx) => console.log(inputs.from(ctx).dryRun),
      steps: [
        step('deploy', async (ctx) => {
          const { environment, replicas, dryRun, note, mode, tag } = inputs.from(ctx);
          same<typeof environment, 'staging' | 'production'>(true);
          same<typeof replicas, number | undefined>(true);
          same<typeof dryRun, boolean>(true);
          same<typeof note, string | null>(true);
          same<typeof mode, 'full'>(true);
          same<typeof tag, string | null | undefined>(true);
          const raw: string | number | boolean | null | undefined = ctx.dispatchInputs.environment;
          console.log(raw, ctx.rawPayload, ctx.provider?.toUpperCase());
        }),
      ],
    }),
  ],
});

export const nightly = workflow('nightly', {
  on: [
    schedule({ cron: '0 3 * * 1-5', timezone: 'Europe/Berlin', description: 'weekday nights', inputs }),
    schedule({ cron: '@hourly', inputs: { depth: z.number().int().default(1) } }),
  ],
  jobs: [job('scan', { runsOn: 'kici:os:linux', run: async (ctx) => console.log(inputs.from(ctx).environment) })],
});

export const manual = workflow('manual', {
  on: dispatch({ inputs: { reason: z.string().min(1), force: z.boolean().optional() } }),
  jobs: [job('run', { runsOn: 'kici:os:linux', run: async ({ dispatchInputs: given }) => console.log(given.reason) })],
});
