// The event triggers: KiCI events with JSONPath filters (by name or by a defineEvent()
// definition), workflow and job completions, and generic webhooks with hmac or api-key auth
// naming a secret; steps and hooks emitting events, by name or typed by a definition.
import {
  defineEvent,
  genericWebhook,
  job,
  jobComplete,
  kiciEvent,
  onFailure,
  step,
  workflow,
  workflowComplete,
  z,
} from '@kici-dev/sdk';

const deployed = defineEvent(
  'deploy.finished',
  z.object({ environment: z.enum(['staging', 'production']), replicas: z.number().int().default(1) }),
);

export default workflow('reactions', {
  on: [
    kiciEvent({ name: 'deploy.finished' }),
    kiciEvent({ name: deployed, match: { '$.environment': 'production' } }),
    kiciEvent({
      name: 'deploy.finished',
      match: { '$.environment': ['staging', 'production'], '$.version': /^v\d+/, '$.replicas': 3 },
      not: { '$.dryRun': true, '$.note': null },
      source: 'acme/api',
    }),
    workflowComplete(),
    workflowComplete({ name: ['build', 'test'], status: 'success', source: 'acme/api' }),
    jobComplete({ workflow: 'ci', job: ['lint', 'test'], status: ['failed', 'skipped'] }),
    genericWebhook({ source: 'stripe' }),
    genericWebhook({
      source: 'stripe',
      events: ['charge.succeeded', 'charge.refunded'],
      match: { '$.livemode': true },
      auth: { method: 'hmac-sha256', secret: 'STRIPE_WEBHOOK_SECRET', signatureHeader: 'stripe-signature' },
      path: 'stripe/payments',
    }),
    genericWebhook({ source: 'pager', auth: { method: 'api-key', secret: 'PAGER_TOKEN', header: 'x-api-key' } }),
  ],
  jobs: [
    job('react', {
      runsOn: 'kici:os:linux',
      run: async ({ event, provider, rawPayload }) => console.log(event.type, provider, rawPayload),
    }),
    job('deploy', {
      runsOn: 'kici:os:linux',
      onFailure: onFailure(async (ctx) => ctx.emit('deploy.failed', { step: ctx.outcome.failedStep ?? null })),
      steps: [
        step('deploy', async (ctx) => {
          await ctx.emit(deployed, { environment: 'production' });
          const emitted: Promise<void> = ctx.emit('deploy.note');
          await emitted;
        }),
      ],
    }),
  ],
});
