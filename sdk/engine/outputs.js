// Outputs: what steps return and what jobs hand on. Checks a step's returned value (against the
// step's `outputs` schema when it has one, then JSON, at most OUTPUTS_LIMIT_BYTES serialized),
// keeps each step's outputs for the job's later steps
// (`stepRef.result`, `ctx.outputsOf`), reads the upstream outputs the host sent in `needs`
// (`jobRef.result`, `ctx.jobOutputs`) and builds the `outputs` of job.complete.
// The JSON and schema checks are also ctx.emit's (events.js).
// It does not send anything (execute.js does) and does not carry outputs between jobs (the host does).

import { jobNames } from '@kici-dev/sdk/internal';
import { errorMessage } from '@kici-dev/shared';

/** Most bytes (UTF-8 JSON) one step's outputs, and one job's, may take. */
export const OUTPUTS_LIMIT_BYTES = 1048576;

/** At most this many schema issues are named in the error, each cut to MAX_ISSUE_CHARS. */
const MAX_SCHEMA_ISSUES = 3;
const MAX_ISSUE_CHARS = 200;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `where` followed by the property or index `key`: `result.files`, `result[0]`, `result["a-b"]`. */
function childWhere(where, key) {
  if (typeof key === 'number') return `${where}[${key}]`;
  return IDENTIFIER.test(key) ? `${where}.${key}` : `${where}[${JSON.stringify(key)}]`;
}

function isPlainObject(value) {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Why `value` is not JSON that comes back unchanged, or undefined when it is. `undefined`
 * object properties are fine (JSON drops them); anything JSON would reject, drop or turn into
 * something else is not.
 * @param {string} where how the reason names `value`, e.g. `result.files[0]`
 * @param {Map<object, string>} ancestors the objects `value` sits in, with their `where`
 */
function notJson(value, where, ancestors) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${where} is ${value}, which JSON cannot hold`;
    case 'bigint':
      return `${where} is a BigInt; use a string or a number`;
    case 'undefined':
      return `${where} is undefined, which JSON turns into null`;
    case 'function':
    case 'symbol':
      return `${where} is a ${typeof value}`;
    default:
      // An object or null: checked below.
      break;
  }
  if (value === null) return undefined;
  if (ancestors.has(value)) return `${where} refers back to ${ancestors.get(value)} (a cycle)`;
  if (!Array.isArray(value) && !isPlainObject(value)) {
    return `${where} is a ${value.constructor?.name ?? 'object'}; use plain objects, arrays, strings, numbers, booleans or null`;
  }
  ancestors.set(value, where);
  const items = Array.isArray(value)
    ? value.map((item, index) => [`${where}[${index}]`, item])
    : Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => [childWhere(where, key), item]);
  for (const [itemWhere, item] of items) {
    const reason = notJson(item, itemWhere, ancestors);
    if (reason !== undefined) return reason;
  }
  ancestors.delete(value);
  return undefined;
}

/** `text` cut to `max` characters, the cut marked. */
function bounded(text, max) {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * `value` as JSON text (`{text}`), or `{reason}` why it is not JSON that comes back unchanged
 * (see notJson; a getter that throws too). `where` names `value` in the reason.
 */
export function jsonText(value, where) {
  try {
    const reason = notJson(value, where, new Map());
    return reason === undefined ? { text: JSON.stringify(value) } : { reason };
  } catch (error) {
    // A getter that throws, or a toJSON that does.
    return { reason: errorMessage(error) };
  }
}

/**
 * `value` checked against a zod schema: `{value}`, what the schema parsed, `{issues}` naming the
 * first MAX_SCHEMA_ISSUES issues by where they are from `where` (`result.files[0]: Expected
 * string, received number; ...`), or `{thrown}` when the check threw (a refinement or getter
 * that throws, or an asynchronous refinement).
 * @param {{safeParse: (value: unknown) => {success: boolean, data?: unknown, error?: {issues: object[]}}}} schema
 */
export function parseWithSchema(schema, value, where) {
  let parsed;
  try {
    parsed = schema.safeParse(value);
  } catch (error) {
    return { thrown: bounded(errorMessage(error), MAX_ISSUE_CHARS) };
  }
  if (parsed.success) return { value: parsed.data };
  const { issues } = parsed.error;
  const named = issues.slice(0, MAX_SCHEMA_ISSUES).map(({ path, message }) => {
    const at = path.reduce((text, key) => childWhere(text, key), where);
    return bounded(`${at}: ${message}`, MAX_ISSUE_CHARS);
  });
  const more = issues.length > MAX_SCHEMA_ISSUES ? `; and ${issues.length - MAX_SCHEMA_ISSUES} more` : '';
  return { issues: `${named.join('; ')}${more}` };
}

/**
 * `value` checked against the step's `outputs` schema (a zod object schema, see the SDK's
 * output-schema.js): `{value}`, what the schema parsed (keys it does not name dropped, defaults
 * filled in), or `{error}` naming the issues by where they are from `result`.
 */
function checkSchema(stepName, value, schema) {
  const { value: parsed, issues, thrown } = parseWithSchema(schema, value, 'result');
  if (thrown !== undefined) {
    return { error: `Step '${stepName}' returned outputs that could not be checked against its schema: ${thrown}` };
  }
  if (issues !== undefined) {
    return { error: `Step '${stepName}' returned outputs that do not match its schema: ${issues}` };
  }
  return { value: parsed };
}

/**
 * A step's returned value as its outputs: `{outputs}` (a JSON copy, so later changes by the
 * step do not reach it), `{error}` with the text that fails the step, or `{}` when it has none
 * (it returned undefined and declares no `outputs` schema). With a schema, the value is checked
 * against it first (undefined too) and what the schema parsed is the outputs.
 * @param {{safeParse: (value: unknown) => {success: boolean, data?: unknown, error?: {issues: object[]}}} | undefined} schema
 */
export function checkStepOutputs(stepName, returned, schema) {
  const checked = schema === undefined ? { value: returned } : checkSchema(stepName, returned, schema);
  if (checked.error !== undefined) return checked;
  const { value } = checked;
  if (value === undefined) return {};
  const { text, reason } = jsonText(value, 'result');
  if (reason !== undefined) return { error: `Step '${stepName}' returned a value that is not JSON: ${reason}` };
  const bytes = Buffer.byteLength(text);
  if (bytes > OUTPUTS_LIMIT_BYTES) {
    return {
      error: `Step '${stepName}' returned ${bytes} bytes of outputs; the limit is ${OUTPUTS_LIMIT_BYTES} (return less, or write a file and use ctx.cache)`,
    };
  }
  return { outputs: JSON.parse(text) };
}

/**
 * One job's outputs: those of its steps so far, and the upstream ones of the request's `needs`
 * (`{<job>: {status, result?}}`, or for a fanned-out upstream an ordered list of
 * `{name, status, result?}`). It is the source `.result` reads (see the SDK's bindResults).
 */
export class JobResults {
  /** Outputs by flat step index. */
  #outputs = new Map();

  /**
   * @param {{workflow: object, job: object, jobName: string, flat: {index: number, name: string, step: object}[],
   *          needs: Record<string, object>}} scope
   */
  constructor({ workflow, job, jobName, flat, needs }) {
    this.job = job;
    this.jobName = jobName;
    this.flat = flat;
    this.needs = needs;
    this.jobNames = jobNames(workflow);
  }

  /** Keeps the outputs of a step row that returned a value. */
  set(row, outputs) {
    this.#outputs.set(row.index, outputs);
  }

  /** The step row `ref` (a Step, or the function of a bare-function step) runs as in this job. */
  #row(ref) {
    const row = this.flat.find(({ step }) => step === ref || step.run === ref);
    if (row === undefined) {
      const label = ref?.name || '(unnamed)';
      throw new Error(
        `Step '${label}' is not a step of job '${this.jobName}'; a step's result is read in later steps of its own job, another job's with jobRef.result or ctx.jobOutputs(jobRef)`,
      );
    }
    return row;
  }

  /** `stepRef.result`: throws when the step has not returned a value (yet). */
  stepResult(ref) {
    const row = this.#row(ref);
    if (!this.#outputs.has(row.index)) {
      throw new Error(`Step '${row.name}' has no result yet (it runs after this step, or returned nothing)`);
    }
    return this.#outputs.get(row.index);
  }

  /** `ctx.outputsOf(ref)`: the step's outputs, undefined when it has none (yet). */
  outputsOf(ref) {
    return this.#outputs.get(this.#row(ref).index);
  }

  /** The upstream `ref` (a Job or a job name) as `{name, need}` from the request's needs. */
  #need(ref) {
    const name = typeof ref === 'string' ? ref : (this.jobNames.get(ref) ?? ref?.name ?? '(unnamed)');
    if (!Object.hasOwn(this.needs, name)) {
      throw new Error(
        `Job '${name}' is not among the needs of job '${this.jobName}', so its result is not here; add it to needs, e.g. needs: ['${name}']`,
      );
    }
    return { name, need: this.needs[name] };
  }

  /** `ctx.jobOutputs(ref)`: the upstream's result (for a fanned-out upstream the list of results). */
  jobOutputs(ref) {
    const { need } = this.#need(ref);
    return Array.isArray(need) ? need.map((entry) => entry.result) : need.result;
  }

  /** `jobRef.result`: like jobOutputs, but throws when the upstream has no result. */
  jobResult(ref) {
    const { name, need } = this.#need(ref);
    const result = this.jobOutputs(ref);
    if (result === undefined) {
      throw new Error(`Job '${name}' has no result (status '${need.status}'; it returned nothing or did not finish)`);
    }
    return result;
  }

  /**
   * The `outputs` of job.complete: `{outputs}` (absent when no step returned anything) or
   * `{error}` when they are too large. A `run` job hands on its step's value itself, a `steps`
   * job `{<step>: value}` in step order.
   */
  message() {
    if (this.#outputs.size === 0) return {};
    const outputs = this.job.optionKeys.includes('run')
      ? this.#outputs.get(0)
      : Object.fromEntries(
          this.flat
            .filter((row) => this.#outputs.has(row.index))
            .map((row) => [row.name, this.#outputs.get(row.index)]),
        );
    const bytes = Buffer.byteLength(JSON.stringify(outputs));
    if (bytes > OUTPUTS_LIMIT_BYTES) {
      return { error: `Job outputs are ${bytes} bytes; the limit is ${OUTPUTS_LIMIT_BYTES}` };
    }
    return { outputs };
  }
}
