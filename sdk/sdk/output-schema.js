// The `outputs` option of step(): checks, when the step is defined, that it is an object of zod
// schemas (`{version: z.string()}`) or a zod object schema (`z.object({...})`, refined or not),
// and turns it into the one schema the runner checks the step's returned value against
// (engine/outputs.js). Schemas are zod 3: the SDK's `z`, or another copy of zod 3 (`isZodSchema`
// tells, for dispatch inputs too).
// It validates nothing at run time and does not decide the outputs' JSON rules (the runner does).

import { describeValue, isObject } from './common.js';
import { z } from './vendor/zod/index.js';

export const OUTPUTS_EXAMPLE =
  "e.g. import { z } from '@kici-dev/sdk'; step('build', { outputs: { version: z.string() }, run: async () => ({ version: '1.2.3' }) })";

/** True for a zod 3 schema (also from another copy of zod 3 than the SDK's). */
export function isZodSchema(value) {
  return (
    value instanceof z.ZodType ||
    (typeof value?._parse === 'function' && typeof value.safeParse === 'function' && isObject(value._def))
  );
}

/** True for a zod 3 object schema, or refinements / transforms of one (`z.object({...}).refine(...)`). */
function isObjectSchema(schema) {
  let current = schema;
  while (current?._def?.typeName === 'ZodEffects') current = current._def.schema;
  return current?._def?.typeName === 'ZodObject';
}

/**
 * The step's `outputs` option as a zod object schema (an object of schemas becomes
 * `z.object(...)`: keys it does not name are dropped), or undefined when not given.
 * @param {(message: string, suggestion: string) => Error} fail builds the step's error
 */
export function outputsSchema(outputs, fail) {
  if (outputs === undefined) return undefined;
  if (isZodSchema(outputs)) {
    if (isObjectSchema(outputs)) return outputs;
    throw fail(
      `outputs must be an object of zod schemas or a zod object schema, got a ${outputs._def.typeName} schema`,
      OUTPUTS_EXAMPLE,
    );
  }
  if (!isObject(outputs) || Object.getPrototypeOf(outputs) !== Object.prototype) {
    const got = Array.isArray(outputs) ? 'an array' : describeValue(outputs);
    throw fail(`outputs must be an object of zod schemas or a zod object schema, got ${got}`, OUTPUTS_EXAMPLE);
  }
  for (const [key, schema] of Object.entries(outputs)) {
    if (!isZodSchema(schema)) {
      throw fail(`outputs.${key} must be a zod schema, got ${describeValue(schema)}`, OUTPUTS_EXAMPLE);
    }
  }
  return z.object(outputs);
}
