// The values of a job that depend on the event: its env layer and its environment names. When
// the host resolved them (the orchestrator evaluates env and environment functions) they come
// in the request (`jobEnv`, `environments`) and are used as they are; otherwise the runner
// resolves the job's own options the same way, calling functions with `request.event` (this is
// how `kici run local` runs a job). A function that throws or returns the wrong kind of value
// fails with a message naming the job and what to return.
// It does not merge env layers (context.js's mergedEnv does) and does not decide where a
// function may run (the compiler does).

import { errorMessage, errorStack } from '@kici-dev/shared';

function isPlainObject(value) {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** How an error text shows a value a function returned: `'prod'`, `42`, `null`, `an array`, `a Map`, `undefined`. */
function describeReturned(value) {
  if (typeof value === 'string') return `'${value}'`;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return 'an object';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return typeof value;
}

const isEnvValue = (value) => ['string', 'number', 'boolean'].includes(typeof value);

/** An Error whose stack (the prepare log shows it) is its message, or `<message>: <stack of cause>`. */
function resolveError(message, thrown) {
  const error = new Error(thrown === undefined ? message : `${message}: ${errorMessage(thrown)}`);
  error.stack = thrown === undefined ? message : `${message}: ${errorStack(thrown)}`;
  return error;
}

/** Calls `fn(event)`; a throw (or rejection) becomes `<what> of job '<job>' threw: <message>`. */
async function call(fn, request, what) {
  try {
    return await fn(request.event);
  } catch (thrown) {
    throw resolveError(`${what} of job '${request.job}' threw`, thrown);
  }
}

/**
 * The job env layer: the request's `jobEnv` when the host sent one, else the job's `env` (an
 * object, or a function called with the event that must return an object of string, number or
 * boolean values, turned into strings).
 * @returns {Promise<Record<string, string> | undefined>}
 */
export async function resolveJobEnv(request, job) {
  if (request.jobEnv !== undefined) return request.jobEnv;
  if (typeof job.env !== 'function') return job.env;
  const value = await call(job.env, request, 'env function');
  const badKey = isPlainObject(value) ? Object.keys(value).find((key) => !isEnvValue(value[key])) : undefined;
  if (!isPlainObject(value) || badKey !== undefined) {
    const returned =
      badKey === undefined
        ? describeReturned(value)
        : `an object whose ${badKey} is ${describeReturned(value[badKey])}`;
    throw resolveError(
      `env function of job '${request.job}' returned ${returned}; return an object such as { DEPLOY_TARGET: 'prod' }`,
    );
  }
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, String(entry)]));
}

/**
 * The job's environment names in order: the request's `environments` when the host sent them,
 * else the job's `environment` / `environments` (names as they are, functions called with the
 * event, each must return a non-empty string).
 * @returns {Promise<string[]>}
 */
export async function resolveEnvironments(request, job) {
  if (request.environments !== undefined) return request.environments;
  const names = [];
  for (const environment of job.environments) {
    if (typeof environment !== 'function') {
      names.push(environment);
      continue;
    }
    const name = await call(environment, request, 'environment function');
    if (typeof name !== 'string' || name === '') {
      throw resolveError(
        `environment function of job '${request.job}' returned ${describeReturned(name)}; return a non-empty string such as 'production'`,
      );
    }
    names.push(name);
  }
  return names;
}
