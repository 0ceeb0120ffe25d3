// `step()` and `parallel()`: build `{_tag: 'Step'}` and `{_tag: 'ParallelGroup'}` values, accept
// every authoring form (`step(name, fn)`, `step(name, opts)`, `step(fn)`, `step({name, run})`,
// bare functions), normalise `retry`, `outputs` and `cache`, record the call site and validate
// (run, timeout, retry, retryIf, outputs, rules, cache).
// Naming unnamed steps (`step-N`) and flat indices are NOT decided here: naming.js does that,
// for job() validation, describe and execute alike.

import { normalizeCacheOption } from './cache.js';
import { KiciError, UNNAMED, callSite, checkWholeNumber, toList } from './common.js';
import { outputsSchema } from './output-schema.js';
import { defineStepResult } from './outputs.js';
import { normalizeRules, toHook } from './rules.js';

/** Retry defaults for `retry: N` and for fields missing from `retry: {...}`. */
const RETRY_DEFAULTS = { delayMs: 1000, backoff: 'exponential', maxDelayMs: 30000 };
const RETRY_EXAMPLE = "e.g. retry: 3 or retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 500 }";
const RETRY_IF_EXAMPLE = "e.g. retry: 3, retryIf: (error) => /ECONNRESET/.test(error.message)";
const STEP_EXAMPLE = "e.g. step('build', async ({ $ }) => { await $`make` })";

/**
 * `retry: N` or `retry: {maxAttempts, delayMs?, backoff?, maxDelayMs?}` to the full object.
 * @param {(message: string, suggestion: string) => KiciError} fail builds the step's error
 */
function normalizeRetry(retry, fail) {
  if (retry === undefined) return undefined;
  const given = typeof retry === 'object' && retry !== null ? retry : { maxAttempts: retry };
  const normalized = {
    maxAttempts: given.maxAttempts,
    delayMs: given.delayMs ?? RETRY_DEFAULTS.delayMs,
    backoff: given.backoff ?? RETRY_DEFAULTS.backoff,
    maxDelayMs: given.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs,
  };
  if (!Number.isSafeInteger(normalized.maxAttempts) || normalized.maxAttempts < 1) {
    throw fail('retry.maxAttempts must be an integer >= 1', RETRY_EXAMPLE);
  }
  if (normalized.backoff !== 'exponential' && normalized.backoff !== 'fixed') {
    throw fail("retry.backoff must be 'exponential' or 'fixed'", RETRY_EXAMPLE);
  }
  for (const field of /** @type {const} */ (['delayMs', 'maxDelayMs'])) {
    checkWholeNumber(normalized[field], { field: `retry.${field}`, min: 0, unit: 'ms', example: RETRY_EXAMPLE }, fail);
  }
  return normalized;
}

/** `retryIf(error, attempt)` decides whether a failed attempt is retried, so it needs `retry`. */
function checkRetryIf({ retry, retryIf }, fail) {
  if (retryIf === undefined) return;
  if (typeof retryIf !== 'function') {
    throw fail('retryIf must be a function (error, attempt) => boolean', RETRY_IF_EXAMPLE);
  }
  if (retry === undefined) {
    throw fail('retryIf needs retry: it only decides whether the attempts retry gives are used', RETRY_IF_EXAMPLE);
  }
}

/** Builds a Step from options; `location` is the `step(` call site (absent for bare functions). */
function makeStep(options, location) {
  const name = options.name || undefined;
  const fail = (message, suggestion) => new KiciError(`Step "${name ?? UNNAMED}": ${message}`, { location, suggestion });
  if (typeof options.run !== 'function') throw fail('run must be a function', STEP_EXAMPLE);
  checkWholeNumber(
    options.timeout,
    { field: 'timeout', min: 1, unit: 'ms', example: "e.g. step('build', { run, timeout: 10 * 60 * 1000 })" },
    fail,
  );
  checkRetryIf(options, fail);
  const step = {
    _tag: 'Step',
    name,
    run: options.run,
    timeout: options.timeout,
    retry: normalizeRetry(options.retry, fail),
    retryIf: options.retryIf,
    continueOnError: options.continueOnError === true,
    outputs: outputsSchema(options.outputs, fail),
    rules: normalizeRules(options.rules, fail),
    // Restored before the step runs, saved after it succeeded (the runner's job).
    cache: normalizeCacheOption(options.cache, fail),
    onCancel: toHook('onCancel', options.onCancel),
    cleanup: toHook('cleanup', options.cleanup),
    location,
    optionKeys: Object.keys(options),
  };
  defineStepResult(step, name ?? UNNAMED);
  return step;
}

/**
 * step(name, fn) | step(name, options) | step(fn) | step(options)
 */
export function step(nameOrOptions, fnOrOptions) {
  const location = callSite();
  if (typeof nameOrOptions === 'string') {
    const rest = typeof fnOrOptions === 'function' ? { run: fnOrOptions } : { ...fnOrOptions };
    return makeStep({ ...rest, name: nameOrOptions }, location);
  }
  if (typeof nameOrOptions === 'function') return makeStep({ run: nameOrOptions }, location);
  return makeStep({ ...nameOrOptions }, location);
}

/** A bare `async (ctx) => {}` inside `steps` (or a job's `run`) as an unnamed Step. */
export function stepFromFunction(run) {
  // `fn.result` reads the step the function runs as; a function that has a `result` of its own
  // (or cannot take one) keeps it, and ctx.outputsOf(fn) still works.
  if (typeof run === 'function' && !Object.hasOwn(run, 'result') && Object.isExtensible(run)) {
    defineStepResult(run, run.name || UNNAMED);
  }
  return makeStep({ run }, undefined);
}

/**
 * parallel(steps, {failFast = true, maxParallel?, name?})
 */
export function parallel(steps, { failFast = true, maxParallel, name } = {}) {
  const location = callSite();
  const items = toList(steps);
  if (items.length === 0) {
    throw new KiciError('parallel() needs at least one step', {
      location,
      suggestion: `pass a list of steps, ${STEP_EXAMPLE}`,
    });
  }
  if (maxParallel !== undefined && !(Number.isInteger(maxParallel) && maxParallel >= 1)) {
    throw new KiciError('maxParallel must be >= 1', {
      location,
      suggestion: 'leave maxParallel out to run every child at once',
    });
  }
  const children = items.map((item) => {
    if (item?._tag === 'ParallelGroup') {
      throw new KiciError('parallel() groups cannot be nested', {
        location,
        suggestion: 'list the inner steps in the outer group',
      });
    }
    if (typeof item === 'function') return stepFromFunction(item);
    if (item?._tag === 'Step') return item;
    throw new KiciError('parallel() children must be step() values or functions', {
      location,
      suggestion: STEP_EXAMPLE,
    });
  });
  return { _tag: 'ParallelGroup', name, failFast, maxParallel, steps: children, location };
}
