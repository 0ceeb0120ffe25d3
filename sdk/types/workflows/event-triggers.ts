// The event triggers: KiCI events with JSONPath filters, workflow and job completions, and
// generic webhooks with hmac or api-key auth naming a secret.
import { genericWebhook, job, jobComplete, kiciEvent, workflow, workflowComplete } from '@kici-dev/sdk';

export default workflow('reactions', {
  on: [
    kiciEvent({ name: 'deploy.finished' }),
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
  ],
});
