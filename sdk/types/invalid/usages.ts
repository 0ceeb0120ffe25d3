// Wrong usages: each must stay a type error (`@ts-expect-error` fails the check once it is not).
import {
  defineDispatchInputs,
  defineEvent,
  dispatch,
  genericWebhook,
  job,
  kiciEvent,
  onFailure,
  schedule,
  step,
  workflow,
  workflowComplete,
  z,
  type HookOutcome,
} from '@kici-dev/sdk';
// @ts-expect-error runner plumbing is not authoring API: it is @kici-dev/sdk/internal, not the package root.
import { flattenSteps } from '@kici-dev/sdk';

const on = 'kici:os:linux';

// @ts-expect-error timeout is a number of ms, not a duration string.
step('slow', { timeout: '10m', run: async () => {} });

// @ts-expect-error continueOnError is misspelt.
step('flaky', { continueOnErorr: true, run: async () => {} });

// @ts-expect-error backoff is 'exponential' or 'fixed'.
step('retried', { retry: { maxAttempts: 3, backoff: 'linear' }, run: async () => {} });

// @ts-expect-error a step's cleanup is a function or {run, timeout?}: a timeout alone runs nothing.
step('tidy', { cleanup: { timeout: 1000 }, run: async () => {} });

// @ts-expect-error a step's cache entry needs a key.
step('cached', { cache: [{ paths: 'out' }], run: async () => {} });

// @ts-expect-error a hook gets the hook context, not the outcome alone.
onFailure((outcome: HookOutcome) => console.log(outcome.failedStep));

// @ts-expect-error retryIf gets (error, attempt), and attempt is a number.
step('retryIf', { retry: 2, retryIf: (_error: unknown, attempt: string) => attempt === '1', run: async () => {} });

// @ts-expect-error there is no 'asdf' init preset ('mise' or 'auto').
job('tools', { runsOn: on, init: 'asdf', run: async () => {} });

// @ts-expect-error the mise preset's options are install and cache; version is not one.
job('mise', { runsOn: on, init: { mise: { version: '2026' } }, run: async () => {} });

// @ts-expect-error a job has steps or run, not both.
job('both', { runsOn: on, run: async () => {}, steps: [] });

// @ts-expect-error 'on-succes' is not a needs condition.
job('after', { runsOn: on, needs: { name: 'build', when: 'on-succes' }, run: async () => {} });

// @ts-expect-error a cache entry needs paths.
job('cached', { runsOn: on, cache: { key: 'npm' }, run: async () => {} });

job('matrix', {
  runsOn: on,
  matrix: { os: ['linux', 'mac'] },
  run: async ({ matrix }) => {
    // @ts-expect-error the matrix has no arch dimension.
    console.log(matrix.arch);
  },
});

workflow('install', {
  jobs: [],
  // @ts-expect-error a registry's token is a secret reference '<environment>:<name>', never the token.
  registries: { url: 'https://npm.acme.dev', tokenSecret: 'NPM_TOKEN' },
});

job('secrets', {
  runsOn: on,
  run: async ({ secrets }) => {
    // @ts-expect-error secrets.get resolves asynchronously: its value is a Promise, not a string.
    const token: string = secrets.get('TOKEN');
    console.log(token);
  },
});

// @ts-expect-error z.string() parses to a string, not a number.
const parsedNumber: number = z.string().parse('1');
console.log(parsedNumber);

const versioned = step('versioned', { outputs: { version: z.string() }, run: async () => ({ version: '1.2.3' }) });
step('read', async () => {
  // @ts-expect-error the step's outputs schema says version is a string.
  const version: number = versioned.result.version;
  // @ts-expect-error the outputs schema has no sha.
  console.log(version, versioned.result.sha);
});

// @ts-expect-error the returned version must be a string, as the outputs schema says.
step('mistyped', { outputs: { version: z.string() }, run: async () => ({ version: 1 }) });

// @ts-expect-error the returned value lacks the version the outputs schema requires.
step('missing', { outputs: z.object({ version: z.string() }), run: () => ({}) });

// @ts-expect-error outputs is an object of schemas or an object schema, not a string schema.
step('text', { outputs: z.string(), run: async () => 'x' });

// @ts-expect-error an outputs entry is a zod schema, not a type name.
step('names', { outputs: { version: 'string' }, run: async () => ({ version: '1' }) });

workflow('grouped', {
  jobs: [],
  // @ts-expect-error the group key is a string, not a number.
  concurrency: { group: () => 42 },
});

// @ts-expect-error a dispatch input is a single value: an array schema is not one.
dispatch({ inputs: { files: z.array(z.string()) } });

// @ts-expect-error defineDispatchInputs takes schemas, not type names.
defineDispatchInputs({ environment: 'string' });

const deployInputs = defineDispatchInputs({ environment: z.enum(['staging', 'production']) });
step('typed', async (ctx) => {
  // @ts-expect-error environment is 'staging' | 'production', not a number.
  const environment: number = deployInputs.from(ctx).environment;
  // @ts-expect-error there is no input named region.
  console.log(environment, deployInputs.from(ctx).region);
});

// @ts-expect-error a schedule needs its cron expression.
schedule({ timezone: 'Europe/Berlin' });

// @ts-expect-error a filter's keys are JSONPaths, starting with $.
kiciEvent({ name: 'deploy.finished', match: { environment: 'production' } });

// @ts-expect-error a workflow run ends as success, failed or cancelled: never skipped.
workflowComplete({ status: 'skipped' });

// @ts-expect-error an api-key webhook's key comes in `header`, not `signatureHeader`.
genericWebhook({ source: 'pager', auth: { method: 'api-key', secret: 'PAGER_TOKEN', signatureHeader: 'x-sig' } });

const released = defineEvent('release.published', z.object({ version: z.string() }));

// @ts-expect-error the payload of a defined event is typed by its schema: version is a string.
step('announce', async (ctx) => ctx.emit(released, { version: 3 }));

// @ts-expect-error a payload is an object of fields, not a list.
step('emit-list', async (ctx) => ctx.emit('release.published', ['1.0.0']));

// @ts-expect-error defineEvent() takes a zod schema, not an object of schemas.
defineEvent('release.published', { version: z.string() });
