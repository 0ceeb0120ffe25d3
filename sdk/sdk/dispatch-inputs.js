// Dispatch and schedule inputs: `defineDispatchInputs(map)`, a frozen handle whose `from(ctx)`
// reads `ctx.dispatchInputs`, and `inputSpecs`, which turns the `inputs` option of dispatch()
// and schedule() (an object of zod schemas, or such a handle) into the lock file's InputSpecs.
// The orchestrator checks a run's inputs against those specs without running zod, so only what
// a spec can say is accepted: z.string(), z.number(), z.boolean(), z.enum() and z.literal() with
// .optional(), .nullable(), .default(), .min(), .max(), .regex(), .int() and .describe().
// Schemas are zod 3 (the SDK's `z`, or another copy). Nothing here checks a run's values.

import { KiciError, callSite, describeValue, isObject } from './common.js';
import { isZodSchema } from './output-schema.js';

const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/** The most inputs one trigger may have (the orchestrator refuses a lock file with more). */
const MAX_INPUTS = 64;
const SUBSET =
  'use z.string(), z.number(), z.boolean(), z.enum([...]) or z.literal(value), with .optional(), .nullable(), ' +
  '.default(value), .min(n), .max(n), .regex(re), .int() and .describe(text)';
const UNSUPPORTED = 'is not supported (the lock file describes an input as a string, number, boolean, enum or literal)';
const ENVIRONMENT = "environment: z.enum(['staging', 'production']).default('staging')";
/** What the `inputs` of a trigger, and the argument of defineDispatchInputs(), may be, with examples. */
const TRIGGER_INPUTS = {
  expected: 'an object of zod schemas or defineDispatchInputs({...})',
  example: `e.g. inputs: { ${ENVIRONMENT} }`,
  shape: 'pass its shape: inputs: schema.shape',
};
const DEFINED_INPUTS = {
  expected: 'an object of zod schemas',
  example: `e.g. defineDispatchInputs({ ${ENVIRONMENT} })`,
  shape: 'pass its shape: defineDispatchInputs(schema.shape)',
};

/** Type names whose schema is not written `z.<name>()`: method wrappers (`.brand()`) and two odd spellings. */
const ZOD_SPELLINGS = {
  ZodBranded: '.brand()',
  ZodCatch: '.catch()',
  ZodReadonly: '.readonly()',
  ZodPipeline: '.pipe()',
  ZodBigInt: 'z.bigint()',
  ZodNaN: 'z.nan()',
};
const EFFECT_SPELLINGS = { refinement: '.refine()', transform: '.transform()', preprocess: 'z.preprocess()' };

/** How the author wrote the schema of `def`, for error texts: `z.array()`, `.transform()`. */
function spelling(def) {
  if (def.typeName === 'ZodEffects') return EFFECT_SPELLINGS[def.effect.type];
  return ZOD_SPELLINGS[def.typeName] ?? `z.${def.typeName.charAt(3).toLowerCase()}${def.typeName.slice(4)}()`;
}

/** `{type, min?, max?, pattern?}` in this order. */
function bounded(type, { min, max, pattern }) {
  const spec = { type };
  if (min !== undefined) spec.min = min;
  if (max !== undefined) spec.max = max;
  if (pattern !== undefined) spec.pattern = pattern;
  return spec;
}

/** The tighter of two lower (`pick` = Math.max) or upper (Math.min) bounds; `.min(1).min(3)` is `.min(3)`. */
const tighter = (pick, current, value) => (current === undefined ? value : pick(current, value));

function stringSpec(checks, fail) {
  const bounds = {};
  for (const check of checks) {
    if (check.kind === 'min') bounds.min = tighter(Math.max, bounds.min, check.value);
    else if (check.kind === 'max') bounds.max = tighter(Math.min, bounds.max, check.value);
    else if (check.kind !== 'regex') {
      throw fail(`.${check.kind}() is not supported (a string input takes .min(), .max() and one .regex())`);
    }
    else if (bounds.pattern !== undefined) {
      const problem = 'a second .regex() is not supported (an input has one pattern)';
      throw fail(problem, 'join them into one regular expression');
    } else if (check.regex.flags !== '') {
      throw fail(
        `.regex(${check.regex}) has flags, which an input's pattern cannot have`,
        'write it without flags, e.g. /^[Yy]es$/ rather than /^yes$/i',
      );
    } else bounds.pattern = check.regex.source;
  }
  return bounded('string', bounds);
}

function numberSpec(checks, fail) {
  const bounds = {};
  let integer = false;
  for (const check of checks) {
    if (check.kind === 'int') integer = true;
    else if (check.kind !== 'min' && check.kind !== 'max') {
      throw fail(`.${check.kind}() is not supported (a number input takes .min(), .max() and .int())`);
    }
    else if (!check.inclusive) {
      throw fail(
        `.${check.kind === 'min' ? 'gt' : 'lt'}(${check.value}) is not supported (an input's bounds are inclusive)`,
        'use .min(n) and .max(n), which include n (.positive() is .gt(0), .negative() is .lt(0))',
      );
    } else if (check.kind === 'min') bounds.min = tighter(Math.max, bounds.min, check.value);
    else bounds.max = tighter(Math.min, bounds.max, check.value);
  }
  return bounded(integer ? 'integer' : 'number', bounds);
}

/** `{type, values?, literal?, min?, max?, pattern?}` of a schema without wrappers. */
function scalarSpec(def, fail) {
  if (def.coerce) {
    throw fail(
      'z.coerce is not supported (the orchestrator turns typed-in text into the input\'s type itself)',
      'leave coerce out: z.number() or z.boolean()',
    );
  }
  switch (def.typeName) {
    case 'ZodString':
      return stringSpec(def.checks, fail);
    case 'ZodNumber':
      return numberSpec(def.checks, fail);
    case 'ZodBoolean':
      return { type: 'boolean' };
    case 'ZodEnum':
      return { type: 'enum', values: [...def.values] };
    case 'ZodLiteral': {
      const { value } = def;
      if (typeof value === 'string' || typeof value === 'boolean' || Number.isFinite(value)) {
        return { type: 'literal', literal: value };
      }
      const written = `z.literal(${describeValue(value)})`;
      throw fail(`${written} is not supported (a literal input is a string, number or boolean)`);
    }
    default:
      throw fail(`${spelling(def)} ${UNSUPPORTED}`);
  }
}

/**
 * The InputSpec of one input's schema: `{type, optional, nullable, default?, values?, literal?,
 * min?, max?, pattern?, description?}` in this order.
 * @param {(message: string, suggestion?: string) => KiciError} fail builds the input's error
 */
function inputSpec(schema, fail) {
  let optional = false;
  let nullable = false;
  let defaulted;
  let description;
  let current = schema;
  // .optional(), .nullable() and .default() wrap the schema, in any order and any number of
  // times; zod carries a description outwards as it wraps, so the outermost one is the last set.
  for (;;) {
    description ??= current._def.description;
    const { typeName } = current._def;
    if (typeName === 'ZodOptional') optional = true;
    else if (typeName === 'ZodNullable') nullable = true;
    // Only the outermost default is ever used: an absent value never reaches an inner one.
    else if (typeName === 'ZodDefault') defaulted ??= current;
    else break;
    current = current._def.innerType;
  }
  const { type, ...details } = scalarSpec(current._def, fail);
  const spec = { type, optional, nullable };
  if (defaulted !== undefined) {
    // Checked once the schema is known to be in the subset, so parsing runs no author code.
    const value = defaulted._def.defaultValue();
    const parsed = defaulted._def.innerType.safeParse(value);
    if (!parsed.success) {
      throw fail(
        `default ${describeValue(value)} does not match its schema (${parsed.error.issues[0].message})`,
        'give a default the schema accepts, or leave .default() out',
      );
    }
    spec.default = value;
  }
  Object.assign(spec, details);
  if (description !== undefined) spec.description = description;
  return spec;
}

/**
 * The `inputs` option of dispatch() or schedule() (an object of zod schemas or a
 * defineDispatchInputs() handle), or the argument of defineDispatchInputs(), as
 * `{<name>: InputSpec}`; undefined when it names no input. With `scheduled`, every input needs
 * a default or .optional().
 * @param {(message: string, suggestion: string) => KiciError} fail the caller's error builder
 * @param {{scheduled?: boolean, handles?: boolean}} [how] `handles`: a handle is accepted
 */
export function inputSpecs(inputs, fail, { scheduled = false, handles = true } = {}) {
  const map = handles && inputs?._tag === 'DispatchInputs' ? inputs.schema : inputs;
  const { expected, example, shape } = handles ? TRIGGER_INPUTS : DEFINED_INPUTS;
  if (isZodSchema(map)) {
    const { typeName } = map._def;
    throw fail(`inputs must be ${expected}, got a ${typeName} schema`, typeName === 'ZodObject' ? shape : example);
  }
  if (!isObject(map)) {
    throw fail(`inputs must be ${expected}, got ${Array.isArray(map) ? 'an array' : describeValue(map)}`, example);
  }
  const names = Object.keys(map);
  if (names.length > MAX_INPUTS) {
    throw fail(
      `inputs has ${names.length} inputs, more than the ${MAX_INPUTS} a trigger may have`,
      'group related values into one input, e.g. a comma-separated string',
    );
  }
  const specs = {};
  for (const [name, schema] of Object.entries(map)) {
    if (!INPUT_NAME.test(name)) {
      throw fail(
        `input name '${name}' is not valid (letters, digits, _ and -, not starting with a digit or -, at most 64)`,
        'e.g. inputs: { deploy_target: z.string() }',
      );
    }
    const inputFail = (message, suggestion = SUBSET) => fail(`input '${name}': ${message}`, suggestion);
    if (!isZodSchema(schema)) throw inputFail(`must be a zod schema, got ${describeValue(schema)}`);
    specs[name] = inputSpec(schema, inputFail);
    if (scheduled && !specs[name].optional && !('default' in specs[name])) {
      throw fail(
        `input '${name}' needs .default(value) or .optional() (a scheduled run has nobody to type the value in)`,
        `e.g. inputs: { ${name}: z.string().default('nightly') }`,
      );
    }
  }
  return names.length > 0 ? specs : undefined;
}

/**
 * defineDispatchInputs(map): `map` checked like the `inputs` of dispatch(), as a frozen handle
 * that dispatch({inputs}) and schedule({inputs}) take and whose `from(ctx)` is
 * `ctx.dispatchInputs` (typed from the schemas in index.d.ts).
 */
export function defineDispatchInputs(map) {
  const location = callSite();
  const fail = (message, suggestion) => new KiciError(`defineDispatchInputs() ${message}`, { location, suggestion });
  inputSpecs(map, fail, { handles: false });
  return Object.freeze({ _tag: 'DispatchInputs', schema: map, from: (ctx) => ctx.dispatchInputs });
}
