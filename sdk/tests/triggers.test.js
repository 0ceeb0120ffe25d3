// Trigger factories: the lock-file triggers describe writes for them (exact JSON, key order
// included), dispatch inputs as InputSpecs for every zod modifier of the subset, the
// defineDispatchInputs() handle, and every refusal (message, suggestion and the call site of the
// factory).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, makeProject, positionOf, thrown } from './helpers.js';

const project = makeProject({});
after(() => project.cleanup());
const { push, pr, tag, dispatch, schedule, defineDispatchInputs, z } = await project.importPackage('sdk/index.js');

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
];

describe('triggers', () => {
  test('each refusal has its message and suggestion', () => {
    for (const [call, message, suggestion] of REFUSED) {
      assert.deepEqual(thrown(call), { message, suggestion });
    }
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
  ],
  jobs: [job('a', { runsOn: 'x', run: f })],
});
`;

describe('triggers in the lock file', () => {
  const described = makeProject({ dispatched: FIXTURE });
  after(() => described.cleanup());

  test('dispatch(): types, and inputs only when it has some', async () => {
    const [file] = await describeModules(described, ['dispatched']);
    sameJson(file.workflows[0].triggers.slice(0, 4), [
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
    const [file] = await describeModules(described, ['dispatched']);
    sameJson(file.workflows[0].triggers.slice(4), [
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
        inputs: file.workflows[0].triggers[1].inputs,
      },
      { _type: 'schedule', cronExpression: '@annually', timezone: 'UTC' },
    ]);
  });

  test('schedule() takes every nickname but @reboot, and Intl time-zone names', () => {
    for (const cron of ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '*/5 0-6 * * 0,6']) {
      assert.equal(schedule({ cron }).cronExpression, cron);
    }
    for (const timezone of ['UTC', 'Etc/UTC', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires', 'GMT']) {
      assert.equal(schedule({ cron: '@daily', timezone }).timezone, timezone);
    }
  });
});
