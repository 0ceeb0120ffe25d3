// Trigger factories: the lock-file triggers describe writes for them (exact JSON, key order
// included), dispatch inputs as InputSpecs for every zod modifier of the subset, the
// defineDispatchInputs() handle, defineEvent() definitions (which kiciEvent() takes as its
// name), and every refusal (message, suggestion and the call site of the factory).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, makeProject, positionOf, thrown } from './helpers.js';

const project = makeProject({});
after(() => project.cleanup());
const sdk = await project.importPackage('sdk/index.js');
const { push, pr, tag, dispatch, schedule, defineDispatchInputs, z } = sdk;
const { kiciEvent, defineEvent, workflowComplete, jobComplete, genericWebhook } = sdk;

/** Same JSON, keys in the same order (deepEqual ignores the order). */
const sameJson = (actual, expected) => assert.equal(JSON.stringify(actual), JSON.stringify(expected));

const SUBSET =
  'use z.string(), z.number(), z.boolean(), z.enum([...]) or z.literal(value), with .optional(), .nullable(), ' +
  '.default(value), .min(n), .max(n), .regex(re), .int() and .describe(text)';
const NOT_SCALAR = 'is not supported (the lock file describes an input as a string, number, boolean, enum or literal)';
const ENVIRONMENT = "environment: z.enum(['staging', 'production']).default('staging')";
const DISPATCH_EXAMPLE = "e.g. dispatch({ types: 'deploy', inputs: { environment: z.string().default('staging') } })";
const SCHEDULE_EXAMPLE = "e.g. schedule({ cron: '0 3 * * 1-5', timezone: 'Europe/Berlin' }) for 03:00 on weekdays";
const CRON_FIELDS_EXAMPLE =
  "write minute hour day-of-month month day-of-week, e.g. '*/15 * * * *' for every 15 minutes " +
  "or '0 3 * * 1-5' for 03:00 on weekdays (no seconds or year field)";
const NICKNAMES = '@hourly, @daily, @weekly, @monthly, @yearly or @annually';
const TIMEZONE_EXAMPLE = "e.g. timezone: 'Europe/Berlin' or 'America/New_York'; leave it out for UTC";
const DEFINE_EVENT_EXAMPLE = "e.g. defineEvent('deploy.finished', z.object({ environment: z.string() }))";
const EVENT_NAME_RULE = "must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit";
const KICI_EVENT_EXAMPLE = "e.g. kiciEvent({ name: 'deploy.finished', match: { '$.environment': 'production' } })";
const WORKFLOW_COMPLETE_EXAMPLE = "e.g. workflowComplete({ name: 'build', status: 'success' })";
const JOB_COMPLETE_EXAMPLE = "e.g. jobComplete({ workflow: 'ci', job: 'test', status: ['failed', 'cancelled'] })";
const WEBHOOK_EXAMPLE = "e.g. genericWebhook({ source: 'stripe', events: 'charge.succeeded' })";
const HMAC_EXAMPLE =
  "e.g. auth: { method: 'hmac-sha256', secret: 'WEBHOOK_SECRET', signatureHeader: 'x-signature' }";
const API_KEY_EXAMPLE = "e.g. auth: { method: 'api-key', secret: 'WEBHOOK_TOKEN', header: 'x-api-key' }";
const EXPECTED =
  'must be a string, number, boolean, null, RegExp or a non-empty list of strings, numbers, booleans and nulls';
const SECRET_NAME =
  "genericWebhook() auth.secret must name a secret, such as 'WEBHOOK_SECRET' (capital letters, digits and _), " +
  'not hold its value';

/** An InputSpec without optional, nullable or anything else. */
const plain = (type, rest = {}) => ({ type, optional: false, nullable: false, ...rest });

/** [input schema, its InputSpec] for each modifier of the subset, alone and combined. */
const SPECS = [
  [z.string(), plain('string')],
  [z.number(), plain('number')],
  [z.number().int(), plain('integer')],
  [z.boolean(), plain('boolean')],
  [z.enum(['staging', 'production']), plain('enum', { values: ['staging', 'production'] })],
  [z.literal('full'), plain('literal', { literal: 'full' })],
  [z.literal(3), plain('literal', { literal: 3 })],
  [z.literal(false), plain('literal', { literal: false })],
  [z.string().optional(), { type: 'string', optional: true, nullable: false }],
  [z.string().nullable(), { type: 'string', optional: false, nullable: true }],
  [z.string().nullish(), { type: 'string', optional: true, nullable: true }],
  [z.string().default('x'), plain('string', { default: 'x' })],
  [z.boolean().default(false), plain('boolean', { default: false })],
  [z.number().nullable().default(null), { type: 'number', optional: false, nullable: true, default: null }],
  [z.string().min(1).max(20), plain('string', { min: 1, max: 20 })],
  [z.string().nonempty(), plain('string', { min: 1 })],
  [z.number().min(-1.5).max(2.5), plain('number', { min: -1.5, max: 2.5 })],
  [z.number().nonnegative().int(), plain('integer', { min: 0 })],
  [z.number().max(9).min(1).max(5).min(2), plain('number', { min: 2, max: 5 })],
  [z.string().regex(/^v\d+\.\d+$/), plain('string', { pattern: '^v\\d+\\.\\d+$' })],
  [z.string().describe('why'), plain('string', { description: 'why' })],
  [
    z.string().describe('inner').optional().describe('outer'),
    { type: 'string', optional: true, nullable: false, description: 'outer' },
  ],
  [z.number().int().default(1).optional(), { type: 'integer', optional: true, nullable: false, default: 1 }],
  [z.string().default('a').default('b'), plain('string', { default: 'b' })],
  [
    z.enum(['a', 'b']).nullable().default('a').optional().describe('mode'),
    { type: 'enum', optional: true, nullable: true, default: 'a', values: ['a', 'b'], description: 'mode' },
  ],
  [
    z.string().regex(/^[a-z]+$/).max(8).min(2).describe('slug').default('main'),
    plain('string', { default: 'main', min: 2, max: 8, pattern: '^[a-z]+$', description: 'slug' }),
  ],
  [z.literal('x').nullable().optional(), { type: 'literal', optional: true, nullable: true, literal: 'x' }],
];

/** [a schema outside the subset, how its refusal names it]. */
const NOT_IN_SUBSET = [
  [z.array(z.string()), 'z.array()'],
  [z.object({}), 'z.object()'],
  [z.union([z.string(), z.number()]), 'z.union()'],
  [z.date(), 'z.date()'],
  [z.bigint(), 'z.bigint()'],
  [z.any().optional(), 'z.any()'],
  [z.nativeEnum({ A: 'a' }), 'z.nativeEnum()'],
  [z.string().transform((text) => text.length), '.transform()'],
  [z.number().refine((n) => n % 2 === 0).default(2), '.refine()'],
  [z.preprocess(String, z.string()), 'z.preprocess()'],
  [z.string().brand(), '.brand()'],
  [z.string().catch('x'), '.catch()'],
  [z.string().readonly(), '.readonly()'],
  [z.string().pipe(z.string()), '.pipe()'],
  [z.string().or(z.number()), 'z.union()'],
  [z.tuple([z.string()]), 'z.tuple()'],
  [z.record(z.string()), 'z.record()'],
  [z.null(), 'z.null()'],
  [z.nan(), 'z.nan()'],
];

/** [what is called, message, suggestion] for each refusal. */
const REFUSED = [
  [
    () => push({ branch: 'main' }),
    "push() has no option 'branch' (use branches, tags or paths)",
    "did you mean 'branches'? e.g. push({ branches: 'main', paths: ['src/**', '!docs/**'] })",
  ],
  [
    () => push('main'),
    "push() options must be an object, got 'main'",
    "e.g. push({ branches: 'main', paths: ['src/**', '!docs/**'] })",
  ],
  [
    () => pr({ targets: 'main' }),
    "pr() has no option 'targets' (use events, target, source or paths)",
    "did you mean 'target'? e.g. pr({ events: ['opened', 'synchronize'], target: 'main' })",
  ],
  [
    () => tag({ pattern: 'v*' }),
    "tag() has no option 'pattern' (use patterns)",
    "did you mean 'patterns'? e.g. tag({ patterns: 'v*' })",
  ],
  [() => tag({ on: 'v*' }), "tag() has no option 'on' (use patterns)", "e.g. tag({ patterns: 'v*' })"],
  [
    () => dispatch({ input: {} }),
    "dispatch() has no option 'input' (use types or inputs)",
    `did you mean 'inputs'? ${DISPATCH_EXAMPLE}`,
  ],
  [
    () => dispatch({ types: ['deploy', ''] }),
    "dispatch() types must be a non-empty string or a list of them, got ''",
    DISPATCH_EXAMPLE,
  ],
  [
    () => dispatch({ types: 5 }),
    'dispatch() types must be a non-empty string or a list of them, got 5',
    DISPATCH_EXAMPLE,
  ],
  // The inputs as a whole.
  [
    () => dispatch({ inputs: 'environment' }),
    "dispatch() inputs must be an object of zod schemas or defineDispatchInputs({...}), got 'environment'",
    `e.g. inputs: { ${ENVIRONMENT} }`,
  ],
  [
    () => dispatch({ inputs: [z.string()] }),
    'dispatch() inputs must be an object of zod schemas or defineDispatchInputs({...}), got an array',
    `e.g. inputs: { ${ENVIRONMENT} }`,
  ],
  [
    () => dispatch({ inputs: z.object({ environment: z.string() }) }),
    'dispatch() inputs must be an object of zod schemas or defineDispatchInputs({...}), got a ZodObject schema',
    'pass its shape: inputs: schema.shape',
  ],
  [
    () => dispatch({ inputs: z.string() }),
    'dispatch() inputs must be an object of zod schemas or defineDispatchInputs({...}), got a ZodString schema',
    `e.g. inputs: { ${ENVIRONMENT} }`,
  ],
  [
    () => defineDispatchInputs(),
    'defineDispatchInputs() inputs must be an object of zod schemas, got undefined',
    `e.g. defineDispatchInputs({ ${ENVIRONMENT} })`,
  ],
  [
    () => defineDispatchInputs(z.object({ environment: z.string() })),
    'defineDispatchInputs() inputs must be an object of zod schemas, got a ZodObject schema',
    'pass its shape: defineDispatchInputs(schema.shape)',
  ],
  [
    () => dispatch({ inputs: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`input${i}`, z.string()])) }),
    'dispatch() inputs has 65 inputs, more than the 64 a trigger may have',
    'group related values into one input, e.g. a comma-separated string',
  ],
  // One input.
  [
    () => dispatch({ inputs: { '1st': z.string() } }),
    "dispatch() input name '1st' is not valid (letters, digits, _ and -, not starting with a digit or -, at most 64)",
    'e.g. inputs: { deploy_target: z.string() }',
  ],
  [
    () => dispatch({ inputs: { ['x'.repeat(65)]: z.string() } }),
    `dispatch() input name '${'x'.repeat(65)}' is not valid ` +
      '(letters, digits, _ and -, not starting with a digit or -, at most 64)',
    'e.g. inputs: { deploy_target: z.string() }',
  ],
  [
    () => dispatch({ inputs: { environment: 'string' } }),
    "dispatch() input 'environment': must be a zod schema, got 'string'",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { mail: z.string().email() } }),
    "dispatch() input 'mail': .email() is not supported (a string input takes .min(), .max() and one .regex())",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { code: z.string().length(3) } }),
    "dispatch() input 'code': .length() is not supported (a string input takes .min(), .max() and one .regex())",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { name: z.string().trim() } }),
    "dispatch() input 'name': .trim() is not supported (a string input takes .min(), .max() and one .regex())",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { tag: z.string().regex(/^v/).regex(/\d$/) } }),
    "dispatch() input 'tag': a second .regex() is not supported (an input has one pattern)",
    'join them into one regular expression',
  ],
  [
    () => dispatch({ inputs: { answer: z.string().regex(/^yes$/i) } }),
    "dispatch() input 'answer': .regex(/^yes$/i) has flags, which an input's pattern cannot have",
    'write it without flags, e.g. /^[Yy]es$/ rather than /^yes$/i',
  ],
  [
    () => dispatch({ inputs: { count: z.number().gt(1) } }),
    "dispatch() input 'count': .gt(1) is not supported (an input's bounds are inclusive)",
    'use .min(n) and .max(n), which include n (.positive() is .gt(0), .negative() is .lt(0))',
  ],
  [
    () => dispatch({ inputs: { count: z.number().int().positive() } }),
    "dispatch() input 'count': .gt(0) is not supported (an input's bounds are inclusive)",
    'use .min(n) and .max(n), which include n (.positive() is .gt(0), .negative() is .lt(0))',
  ],
  [
    () => dispatch({ inputs: { count: z.number().lt(10) } }),
    "dispatch() input 'count': .lt(10) is not supported (an input's bounds are inclusive)",
    'use .min(n) and .max(n), which include n (.positive() is .gt(0), .negative() is .lt(0))',
  ],
  [
    () => dispatch({ inputs: { count: z.number().multipleOf(5) } }),
    "dispatch() input 'count': .multipleOf() is not supported (a number input takes .min(), .max() and .int())",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { count: z.number().finite() } }),
    "dispatch() input 'count': .finite() is not supported (a number input takes .min(), .max() and .int())",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { nothing: z.literal(null) } }),
    "dispatch() input 'nothing': z.literal(null) is not supported (a literal input is a string, number or boolean)",
    SUBSET,
  ],
  [
    () => dispatch({ inputs: { count: z.coerce.number() } }),
    "dispatch() input 'count': z.coerce is not supported " +
      "(the orchestrator turns typed-in text into the input's type itself)",
    'leave coerce out: z.number() or z.boolean()',
  ],
  [
    () => dispatch({ inputs: { count: z.number().int().min(1).default(0) } }),
    "dispatch() input 'count': default 0 does not match its schema (Number must be greater than or equal to 1)",
    'give a default the schema accepts, or leave .default() out',
  ],
  [
    () => dispatch({ inputs: { mode: z.enum(['a', 'b']).default('c') } }),
    "dispatch() input 'mode': default 'c' does not match its schema " +
      "(Invalid enum value. Expected 'a' | 'b', received 'c')",
    'give a default the schema accepts, or leave .default() out',
  ],
  // schedule()
  [() => schedule(), 'schedule() needs a cron expression', SCHEDULE_EXAMPLE],
  [() => schedule({ cron: '  ' }), 'schedule() needs a cron expression', SCHEDULE_EXAMPLE],
  [() => schedule({ cron: 5 }), 'schedule() cron must be a string, got 5', SCHEDULE_EXAMPLE],
  [
    () => schedule({ cron: '@daily', tz: 'UTC' }),
    "schedule() has no option 'tz' (use cron, timezone, description or inputs)",
    SCHEDULE_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@reboot' }),
    `schedule() cron '@reboot' is not supported (use 5 fields or ${NICKNAMES})`,
    CRON_FIELDS_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@Daily' }),
    `schedule() cron '@Daily' is not supported (use 5 fields or ${NICKNAMES})`,
    `did you mean '@daily'? ${CRON_FIELDS_EXAMPLE}`,
  ],
  [() => schedule({ cron: '0 0 3 * * *' }), "schedule() cron '0 0 3 * * *' has 6 fields, not 5", CRON_FIELDS_EXAMPLE],
  [
    () => schedule({ cron: '0 0 3 * * * 2030' }),
    "schedule() cron '0 0 3 * * * 2030' has 7 fields, not 5",
    CRON_FIELDS_EXAMPLE,
  ],
  [() => schedule({ cron: '0 3 * *' }), "schedule() cron '0 3 * *' has 4 fields, not 5", CRON_FIELDS_EXAMPLE],
  [
    () => schedule({ cron: '0 3 ? * MON' }),
    "schedule() cron '0 3 ? * MON' has an invalid day-of-month field '?'",
    `a field is made of digits, *, ',', '-' and '/'; ${CRON_FIELDS_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '0 3L * * *' }),
    "schedule() cron '0 3L * * *' has an invalid hour field '3L'",
    `a field is made of digits, *, ',', '-' and '/'; ${CRON_FIELDS_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: 'x 3 * * *' }),
    "schedule() cron 'x 3 * * *' has an invalid minute field 'x'",
    `a field is made of digits, *, ',', '-' and '/'; ${CRON_FIELDS_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '0 3 * MON *' }),
    "schedule() cron '0 3 * MON *' has an invalid month field 'MON'",
    `a field is made of digits, *, ',', '-' and '/' and month names (JAN); ${CRON_FIELDS_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '0 3 * * 1#2' }),
    "schedule() cron '0 3 * * 1#2' has an invalid day-of-week field '1#2'",
    `a field is made of digits, *, ',', '-' and '/' and day names (MON); ${CRON_FIELDS_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '@daily', timezone: 'Europe/Berln' }),
    "schedule() timezone must be an IANA time-zone name, got 'Europe/Berln'",
    `did you mean 'Europe/Berlin'? ${TIMEZONE_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '@daily', timezone: '+01:00' }),
    "schedule() timezone must be an IANA time-zone name, got '+01:00'",
    TIMEZONE_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@daily', timezone: 'utc' }),
    "schedule() timezone must be an IANA time-zone name, got 'utc'",
    `did you mean 'UTC'? ${TIMEZONE_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '@daily', timezone: 'europe/paris' }),
    "schedule() timezone must be an IANA time-zone name, got 'europe/paris'",
    `did you mean 'Europe/Paris'? ${TIMEZONE_EXAMPLE}`,
  ],
  [
    () => schedule({ cron: '@daily', timezone: 'us/Eastern' }),
    "schedule() timezone must be an IANA time-zone name, got 'us/Eastern'",
    TIMEZONE_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@daily', timezone: 1 }),
    'schedule() timezone must be an IANA time-zone name, got 1',
    TIMEZONE_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@daily', description: ['nightly'] }),
    'schedule() description must be a string, got object',
    SCHEDULE_EXAMPLE,
  ],
  [
    () => schedule({ cron: '@daily', inputs: { target: z.string().min(1) } }),
    "schedule() input 'target' needs .default(value) or .optional() (a scheduled run has nobody to type the value in)",
    "e.g. inputs: { target: z.string().default('nightly') }",
  ],
  [
    () => schedule({ cron: '@daily', inputs: defineDispatchInputs({ force: z.boolean().nullable() }) }),
    "schedule() input 'force' needs .default(value) or .optional() (a scheduled run has nobody to type the value in)",
    "e.g. inputs: { force: z.string().default('nightly') }",
  ],
  [
    () => schedule({ cron: '@daily', inputs: { files: z.array(z.string()).default([]) } }),
    `schedule() input 'files': z.array() ${NOT_SCALAR}`,
    SUBSET,
  ],
  // kiciEvent()
  [() => kiciEvent(), 'kiciEvent() needs an event name', KICI_EVENT_EXAMPLE],
  [() => kiciEvent({ name: ' ' }), "kiciEvent() name must be a non-empty string, got ' '", KICI_EVENT_EXAMPLE],
  [() => kiciEvent({ name: 5 }), 'kiciEvent() name must be a non-empty string, got 5', KICI_EVENT_EXAMPLE],
  [
    () => kiciEvent({ name: 'deploy finished' }),
    "kiciEvent() name must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit, got 'deploy finished'",
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ event: 'deploy' }),
    "kiciEvent() has no option 'event' (use name, match, not or source)",
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', match: 'production' }),
    "kiciEvent() match must be an object of JSONPath: expected value, got 'production'",
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', match: { environment: 'production' } }),
    "kiciEvent() match key 'environment' is not a JSONPath (it starts with $)",
    "e.g. match: { '$.environment': ... }",
  ],
  [
    () => kiciEvent({ name: 'deploy', not: { '.dryRun': true } }),
    "kiciEvent() not key '.dryRun' is not a JSONPath (it starts with $)",
    "e.g. not: { '$.dryRun': ... }",
  ],
  [
    () => kiciEvent({ name: 'deploy', match: { '$.target': { name: 'production' } } }),
    `kiciEvent() match['$.target'] ${EXPECTED}, got object`,
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', match: { '$.target': [] } }),
    `kiciEvent() match['$.target'] ${EXPECTED}, got an empty list`,
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', match: { '$.target': ['staging', /^prod/] } }),
    `kiciEvent() match['$.target'] ${EXPECTED}, got a list holding object`,
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', not: { '$.replicas': Infinity } }),
    `kiciEvent() not['$.replicas'] ${EXPECTED}, got Infinity`,
    KICI_EVENT_EXAMPLE,
  ],
  [
    () => kiciEvent({ name: 'deploy', source: '' }),
    "kiciEvent() source must be a repository name such as 'acme/api', got ''",
    KICI_EVENT_EXAMPLE,
  ],
  // defineEvent()
  [
    () => defineEvent('deploy finished', z.object({})),
    `defineEvent() name ${EVENT_NAME_RULE}, got 'deploy finished'`,
    DEFINE_EVENT_EXAMPLE,
  ],
  [
    () => defineEvent('.hidden', z.object({})),
    `defineEvent() name ${EVENT_NAME_RULE}, got '.hidden'`,
    DEFINE_EVENT_EXAMPLE,
  ],
  [
    () => defineEvent(undefined, z.object({})),
    `defineEvent() name ${EVENT_NAME_RULE}, got undefined`,
    DEFINE_EVENT_EXAMPLE,
  ],
  [
    () => defineEvent('deploy.finished'),
    'defineEvent() schema must be a zod schema, got undefined',
    DEFINE_EVENT_EXAMPLE,
  ],
  [
    () => defineEvent('deploy.finished', { environment: z.string() }),
    'defineEvent() schema must be a zod schema, got an object of schemas',
    `wrap it in z.object(): ${DEFINE_EVENT_EXAMPLE}`,
  ],
  // workflowComplete() and jobComplete()
  [
    () => workflowComplete({ names: 'build' }),
    "workflowComplete() has no option 'names' (use name, status or source)",
    `did you mean 'name'? ${WORKFLOW_COMPLETE_EXAMPLE}`,
  ],
  [
    () => workflowComplete({ name: ['build', 42] }),
    'workflowComplete() name must be a non-empty string or a list of them, got 42',
    WORKFLOW_COMPLETE_EXAMPLE,
  ],
  [
    () => workflowComplete({ status: 'failure' }),
    "workflowComplete() status must be 'success', 'failed' or 'cancelled' (one or a list), got 'failure'",
    WORKFLOW_COMPLETE_EXAMPLE,
  ],
  [
    () => workflowComplete({ status: ['success', 'skipped'] }),
    "workflowComplete() status must be 'success', 'failed' or 'cancelled' (one or a list), got 'skipped'",
    WORKFLOW_COMPLETE_EXAMPLE,
  ],
  [
    () => workflowComplete({ source: 7 }),
    "workflowComplete() source must be a repository name such as 'acme/api', got 7",
    WORKFLOW_COMPLETE_EXAMPLE,
  ],
  [
    () => jobComplete({ jobs: 'test' }),
    "jobComplete() has no option 'jobs' (use workflow, job, status or source)",
    `did you mean 'job'? ${JOB_COMPLETE_EXAMPLE}`,
  ],
  [
    () => jobComplete({ workflow: '' }),
    "jobComplete() workflow must be a non-empty string or a list of them, got ''",
    JOB_COMPLETE_EXAMPLE,
  ],
  [
    () => jobComplete({ job: [null] }),
    'jobComplete() job must be a non-empty string or a list of them, got null',
    JOB_COMPLETE_EXAMPLE,
  ],
  [
    () => jobComplete({ status: 'skiped' }),
    "jobComplete() status must be 'success', 'failed', 'skipped' or 'cancelled' (one or a list), got 'skiped'",
    `did you mean 'skipped'? ${JOB_COMPLETE_EXAMPLE}`,
  ],
  // genericWebhook()
  [() => genericWebhook(), "genericWebhook() needs a source (the sender's name)", WEBHOOK_EXAMPLE],
  [() => genericWebhook({ source: '' }), "genericWebhook() source must be a non-empty string, got ''", WEBHOOK_EXAMPLE],
  [
    () => genericWebhook({ source: 'stripe', event: 'charge.succeeded' }),
    "genericWebhook() has no option 'event' (use source, events, match, not, auth or path)",
    `did you mean 'events'? ${WEBHOOK_EXAMPLE}`,
  ],
  [
    () => genericWebhook({ source: 'stripe', events: [''] }),
    "genericWebhook() events must be a non-empty string or a list of them, got ''",
    WEBHOOK_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', match: { livemode: true } }),
    "genericWebhook() match key 'livemode' is not a JSONPath (it starts with $)",
    "e.g. match: { '$.livemode': ... }",
  ],
  [
    () => genericWebhook({ source: 'stripe', path: '' }),
    "genericWebhook() path must be a non-empty string, got ''",
    "e.g. path: 'stripe/payments'",
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: 'STRIPE_SECRET' }),
    "genericWebhook() auth must be {method: 'hmac-sha256', secret, signatureHeader?} or " +
      "{method: 'api-key', secret, header?}, got 'STRIPE_SECRET'",
    HMAC_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'hmac', secret: 'STRIPE_SECRET' } }),
    "genericWebhook() auth.method must be 'hmac-sha256' or 'api-key', got 'hmac'",
    HMAC_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'api_key', secret: 'STRIPE_SECRET' } }),
    "genericWebhook() auth.method must be 'hmac-sha256' or 'api-key', got 'api_key'",
    `did you mean 'api-key'? ${HMAC_EXAMPLE}`,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { secret: 'STRIPE_SECRET' } }),
    "genericWebhook() auth.method must be 'hmac-sha256' or 'api-key', got undefined",
    HMAC_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'api-key', secret: 'sk_live_51Hx' } }),
    SECRET_NAME,
    `keep the value in a secret and give its name, ${API_KEY_EXAMPLE}`,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'hmac-sha256' } }),
    SECRET_NAME,
    `keep the value in a secret and give its name, ${HMAC_EXAMPLE}`,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'api-key', secret: 'TOKEN', signatureHeader: 'x-sig' } }),
    "genericWebhook() auth has no option 'signatureHeader' for method 'api-key' (use method, secret or header)",
    API_KEY_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'hmac-sha256', secret: 'TOKEN', signatureHeadr: 'x' } }),
    "genericWebhook() auth has no option 'signatureHeadr' for method 'hmac-sha256' " +
      '(use method, secret or signatureHeader)',
    `did you mean 'signatureHeader'? ${HMAC_EXAMPLE}`,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'api-key', secret: 'TOKEN', header: 'x api key' } }),
    "genericWebhook() auth.header must be an HTTP header name, got 'x api key'",
    API_KEY_EXAMPLE,
  ],
  [
    () => genericWebhook({ source: 'stripe', auth: { method: 'hmac-sha256', secret: 'TOKEN', signatureHeader: '' } }),
    "genericWebhook() auth.signatureHeader must be an HTTP header name, got ''",
    HMAC_EXAMPLE,
  ],
];

describe('triggers', () => {
  test('each refusal has its message and suggestion', () => {
    for (const [call, message, suggestion] of REFUSED) {
      assert.deepEqual(thrown(call), { message, suggestion });
    }
  });

  test('a refused webhook secret is not quoted in the error', () => {
    const { message, suggestion } = thrown(() =>
      genericWebhook({ source: 'stripe', auth: { method: 'hmac-sha256', secret: 'whsec_0123456789abcdef' } }),
    );
    assert.ok(!`${message} ${suggestion}`.includes('whsec_'));
  });

  test('a refused trigger is a describe error at the factory call', async () => {
    const source = `${SDK_IMPORT}export default workflow('w', {
  on: [push(), pr({ branches: 'main' })],
  jobs: [job('a', { runsOn: 'x', run: async () => {} })],
});
`;
    const invalid = makeProject({ misspelt: source });
    after(() => invalid.cleanup());
    const [file] = await describeModules(invalid, ['misspelt']);
    assert.equal(file.error.message, "pr() has no option 'branches' (use events, target, source or paths)");
    assert.equal(file.error.suggestion, "e.g. pr({ events: ['opened', 'synchronize'], target: 'main' })");
    assert.deepEqual(file.error.location, { file: invalid.file('misspelt'), ...positionOf(source, 'pr({') });
  });

  test('a schema outside the subset is refused, named as written', () => {
    for (const [schema, name] of NOT_IN_SUBSET) {
      assert.deepEqual(thrown(() => dispatch({ inputs: { input: schema } })), {
        message: `dispatch() input 'input': ${name} ${NOT_SCALAR}`,
        suggestion: SUBSET,
      });
    }
    assert.deepEqual(thrown(() => defineDispatchInputs({ target: z.object({}) })), {
      message: `defineDispatchInputs() input 'target': z.object() ${NOT_SCALAR}`,
      suggestion: SUBSET,
    });
  });

  test('each zod schema of the subset is its InputSpec, keys in order', () => {
    for (const [schema, spec] of SPECS) sameJson(dispatch({ inputs: { input: schema } }).inputs, { input: spec });
  });

  test('defineDispatchInputs() is a frozen handle that dispatch() takes; from(ctx) is ctx.dispatchInputs', () => {
    const schema = { environment: z.enum(['staging', 'production']).default('staging'), force: z.boolean().optional() };
    const inputs = defineDispatchInputs(schema);
    assert.ok(Object.isFrozen(inputs));
    assert.deepEqual(Object.keys(inputs), ['_tag', 'schema', 'from']);
    assert.equal(inputs._tag, 'DispatchInputs');
    assert.equal(inputs.schema, schema);
    const dispatchInputs = { environment: 'production' };
    assert.equal(inputs.from({ dispatchInputs, event: { type: 'dispatch' } }), dispatchInputs);
    assert.deepEqual(dispatch({ inputs }).inputs, dispatch({ inputs: schema }).inputs);
    assert.equal(dispatch({ inputs: defineDispatchInputs({}) }).inputs, undefined);
    const many = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`input${i}`, z.string().optional()]));
    assert.equal(Object.keys(dispatch({ inputs: many }).inputs).length, 64);
  });

  test('defineEvent() is a frozen definition that kiciEvent() takes as its name', () => {
    const schema = z.object({ environment: z.string() });
    const longest = `a${'b'.repeat(127)}`;
    for (const name of ['deploy.finished', 'Build_2:done-ok', '9', longest]) {
      const deployed = defineEvent(name, schema);
      assert.ok(Object.isFrozen(deployed));
      assert.deepEqual(Object.keys(deployed), ['_tag', 'name', 'schema']);
      assert.equal(deployed._tag, 'EventDefinition');
      assert.equal(deployed.name, name);
      assert.equal(deployed.schema, schema);
      assert.equal(kiciEvent({ name: deployed }).eventName, name);
    }
    assert.throws(() => defineEvent(`${longest}c`, schema), { message: /^defineEvent\(\) name must be 1 to 128/ });
    sameJson(
      kiciEvent({ name: defineEvent('deploy.finished', schema), match: { '$.environment': 'production' } }),
      kiciEvent({ name: 'deploy.finished', match: { '$.environment': 'production' } }),
    );
  });

  test('an input refused by defineDispatchInputs() is a describe error at its call', async () => {
    const source = `${SDK_IMPORT}import { defineDispatchInputs, z } from '@kici-dev/sdk';
const inputs = defineDispatchInputs({ files: z.array(z.string()) });
export default workflow('w', { on: dispatch({ inputs }), jobs: [job('a', { runsOn: 'x', run: async () => {} })] });
`;
    const invalid = makeProject({ arrayInput: source });
    after(() => invalid.cleanup());
    const [file] = await describeModules(invalid, ['arrayInput']);
    assert.equal(file.error.message, `defineDispatchInputs() input 'files': z.array() ${NOT_SCALAR}`);
    const at = positionOf(source, 'defineDispatchInputs({');
    assert.deepEqual(file.error.location, { file: invalid.file('arrayInput'), ...at });
  });
});

const FIXTURE = `${SDK_IMPORT}import { defineDispatchInputs, schedule, z } from '@kici-dev/sdk';
import { kiciEvent, workflowComplete, jobComplete, genericWebhook } from '@kici-dev/sdk';
const inputs = defineDispatchInputs({
  environment: z.enum(['staging', 'production']).default('staging').describe('where to deploy'),
  replicas: z.number().int().min(1).max(10).optional(),
});
const f = async () => {};
export default workflow('dispatched', {
  on: [
    dispatch(),
    dispatch({ types: ['deploy', 'rollback'], inputs }),
    dispatch({ types: 'note', inputs: { text: z.string().min(1).regex(/^[^\\n]*$/).nullable() } }),
    dispatch({ inputs: {} }),
    schedule({ cron: '0 3 * * 1-5' }),
    schedule({
      cron: ' 30 2 1,15 jan-jun MON-FRI ',
      timezone: 'Europe/Berlin',
      description: 'twice a month',
      inputs: { target: z.string().default('nightly'), force: z.boolean().optional() },
    }),
    schedule({ cron: '@hourly', timezone: 'US/Eastern', inputs }),
    schedule({ cron: '@annually', inputs: {} }),
    kiciEvent({ name: 'deploy.finished' }),
    kiciEvent({
      name: 'deploy.finished',
      match: { '$.environment': ['staging', 'production'], '$.replicas': 3, '$.canary': false, '$.note': null },
      not: { '$.version': /^v0\\./i, '$.actor': 'bot' },
      source: 'acme/api',
    }),
    kiciEvent({ name: 'tick', match: {}, not: {} }),
    workflowComplete(),
    workflowComplete({ name: 'build', status: ['failed', 'cancelled'], source: 'acme/api' }),
    workflowComplete({ name: [], status: [] }),
    jobComplete(),
    jobComplete({ workflow: ['ci', 'nightly'], job: 'test', status: 'skipped', source: 'acme/web' }),
    genericWebhook({ source: 'stripe' }),
    genericWebhook({
      source: 'stripe',
      events: 'charge.succeeded',
      match: { '$.livemode': true },
      not: { '$.data.object.amount': 0 },
      auth: { method: 'hmac-sha256', secret: 'STRIPE_WEBHOOK_SECRET', signatureHeader: 'stripe-signature' },
      path: 'stripe/payments',
    }),
    genericWebhook({ source: 'pager', events: [], auth: { method: 'api-key', secret: 'PAGER_TOKEN' } }),
    genericWebhook({ source: 'ops', auth: { method: 'api-key', secret: 'OPS_KEY', header: 'x-api-key' } }),
    genericWebhook({ source: 'ci', auth: { method: 'hmac-sha256', secret: 'CI_HMAC' } }),
  ],
  jobs: [job('a', { runsOn: 'x', run: f })],
});
`;

describe('triggers in the lock file', () => {
  const described = makeProject({ dispatched: FIXTURE });
  after(() => described.cleanup());
  /** The fixture's triggers, described once for every test. */
  const triggers = describeModules(described, ['dispatched']).then(([file]) => file.workflows[0].triggers);

  test('dispatch(): types, and inputs only when it has some', async () => {
    sameJson((await triggers).slice(0, 4), [
      { _type: 'dispatch', types: [] },
      {
        _type: 'dispatch',
        types: ['deploy', 'rollback'],
        inputs: {
          environment: {
            type: 'enum',
            optional: false,
            nullable: false,
            default: 'staging',
            values: ['staging', 'production'],
            description: 'where to deploy',
          },
          replicas: { type: 'integer', optional: true, nullable: false, min: 1, max: 10 },
        },
      },
      {
        _type: 'dispatch',
        types: ['note'],
        inputs: { text: { type: 'string', optional: false, nullable: true, min: 1, pattern: '^[^\\n]*$' } },
      },
      { _type: 'dispatch', types: [] },
    ]);
  });

  test('schedule(): the cron expression trimmed, the time zone (UTC by default), description and inputs', async () => {
    sameJson((await triggers).slice(4, 8), [
      { _type: 'schedule', cronExpression: '0 3 * * 1-5', timezone: 'UTC' },
      {
        _type: 'schedule',
        cronExpression: '30 2 1,15 jan-jun MON-FRI',
        timezone: 'Europe/Berlin',
        description: 'twice a month',
        inputs: {
          target: { type: 'string', optional: false, nullable: false, default: 'nightly' },
          force: { type: 'boolean', optional: true, nullable: false },
        },
      },
      {
        _type: 'schedule',
        cronExpression: '@hourly',
        timezone: 'US/Eastern',
        inputs: (await triggers)[1].inputs,
      },
      { _type: 'schedule', cronExpression: '@annually', timezone: 'UTC' },
    ]);
  });

  test('kiciEvent(): eventName, then match and not (a RegExp as /source/flags) and source when given', async () => {
    sameJson((await triggers).slice(8, 11), [
      { _type: 'kici_event', eventName: 'deploy.finished' },
      {
        _type: 'kici_event',
        eventName: 'deploy.finished',
        match: { '$.environment': ['staging', 'production'], '$.replicas': 3, '$.canary': false, '$.note': null },
        not: { '$.version': '/^v0\\./i', '$.actor': 'bot' },
        source: 'acme/api',
      },
      { _type: 'kici_event', eventName: 'tick' },
    ]);
  });

  test('workflowComplete() and jobComplete(): lists of names and statuses, empty ones left out', async () => {
    sameJson((await triggers).slice(11, 16), [
      { _type: 'workflow_complete' },
      { _type: 'workflow_complete', workflows: ['build'], statuses: ['failed', 'cancelled'], source: 'acme/api' },
      { _type: 'workflow_complete' },
      { _type: 'job_complete' },
      {
        _type: 'job_complete',
        workflows: ['ci', 'nightly'],
        jobs: ['test'],
        statuses: ['skipped'],
        source: 'acme/web',
      },
    ]);
  });

  test('genericWebhook(): source, events, filters, auth (the api-key header filled in) and path', async () => {
    sameJson((await triggers).slice(16), [
      { _type: 'generic_webhook', source: 'stripe' },
      {
        _type: 'generic_webhook',
        source: 'stripe',
        events: ['charge.succeeded'],
        match: { '$.livemode': true },
        not: { '$.data.object.amount': 0 },
        auth: { method: 'hmac-sha256', secret: 'STRIPE_WEBHOOK_SECRET', signatureHeader: 'stripe-signature' },
        path: 'stripe/payments',
      },
      {
        _type: 'generic_webhook',
        source: 'pager',
        auth: { method: 'api-key', secret: 'PAGER_TOKEN', header: 'authorization' },
      },
      { _type: 'generic_webhook', source: 'ops', auth: { method: 'api-key', secret: 'OPS_KEY', header: 'x-api-key' } },
      { _type: 'generic_webhook', source: 'ci', auth: { method: 'hmac-sha256', secret: 'CI_HMAC' } },
    ]);
  });

  test('schedule() takes every nickname but @reboot, and IANA time-zone names and aliases', () => {
    for (const cron of ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '*/5 0-6 * * 0,6']) {
      assert.equal(schedule({ cron }).cronExpression, cron);
    }
    const aliases = ['Etc/UTC', 'GMT', 'US/Eastern'];
    for (const timezone of ['UTC', 'Etc/GMT+5', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires', ...aliases]) {
      assert.equal(schedule({ cron: '@daily', timezone }).timezone, timezone);
    }
  });
});
