// The values of a job that depend on the event: its env layer and its environment names. When
// the host resolved them (the orchestrator evaluates env and environment functions) they come
// in the request (`jobEnv`, `environments`) and are used as they are; otherwise the runner
// evaluates the job's own options, calling functions with `request.event` (this is how
// `kici run local` runs a job, and what an init job, evaluate kind `init`, computes for the
// orchestrator). A function that throws, takes longer than 60 s or returns the wrong kind of
// value fails with a message naming the job and what to return.
// It does not merge env layers (context.js's mergedEnv does) and does not decide where a
// function may run (the compiler does).

import { errorMessage, errorStack } from '@kici-dev/shared';
import { race } from './run-step.js';

/** How long one env or environment function may take (`await`s included). */
export const FUNCTION_TIMEOUT_MS = 60_000;

/** These functions get no signal to stop them: only their time limit ends the wait. */
const UNINTERRUPTED = new AbortController().signal;

function isPlainObject(value) {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** How an error text shows a value a function returned: `'prod'`, `42`, `null`, `an array`, `a Map`, `undefined`. */
export function describeReturned(value) {
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

/**
 * Awaits `fn(event)` for at most `timeoutMs`; a throw (or rejection) becomes `<what> of job
 * '<job>' threw: <message>`, the limit `<what> of job '<job>' timed out after <ms>ms`.
 */
async function call(fn, request, what, timeoutMs) {
  const outcome = await race(() => fn(request.event), { timeoutMs, parentSignal: UNINTERRUPTED });
  if (outcome.kind === 'thrown') throw resolveError(`${what} of job '${request.job}' threw`, outcome.thrown);
  if (outcome.kind === 'timedOut') {
    throw resolveError(`${what} of job '${request.job}' timed out after ${timeoutMs}ms`);
  }
  return outcome.value;
}

/** The job env layer: the request's `jobEnv` when the host sent one, else evaluateJobEnv's. */
export async function resolveJobEnv(request, job) {
  return request.jobEnv !== undefined ? request.jobEnv : evaluateJobEnv(request, job);
}

/**
 * The job's own env layer: its `env` object, or its function called with the event, which must
 * return an object of string, number or boolean values (turned into strings).
 * @param {{timeoutMs?: number}} [limits] the time a function gets (tests shorten it)
 * @returns {Promise<Record<string, string> | undefined>}
 */
export async function evaluateJobEnv(request, job, { timeoutMs = FUNCTION_TIMEOUT_MS } = {}) {
  if (typeof job.env !== 'function') return job.env;
  const value = await call(job.env, request, 'env function', timeoutMs);
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

/** The environment names: the request's `environments` when the host sent them, else evaluateEnvironments's. */
export async function resolveEnvironments(request, job) {
  return request.environments !== undefined ? request.environments : evaluateEnvironments(request, job);
}

/**
 * The job's own environment names in order, from its `environment` / `environments`: names as
 * they are, functions called with the event (each must return a non-empty string).
 * @param {{timeoutMs?: number}} [limits] the time a function gets (tests shorten it)
 * @returns {Promise<string[]>}
 */
export async function evaluateEnvironments(request, job, { timeoutMs = FUNCTION_TIMEOUT_MS } = {}) {
  const names = [];
  for (const environment of job.environments) {
    if (typeof environment !== 'function') {
      names.push(environment);
      continue;
    }
    const name = await call(environment, request, 'environment function', timeoutMs);
    if (typeof name !== 'string' || name === '') {
      throw resolveError(
        `environment function of job '${request.job}' returned ${describeReturned(name)}; return a non-empty string such as 'production'`,
      );
    }
    names.push(name);
  }
  return names;
}
