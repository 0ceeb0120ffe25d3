// `waitFor()`: poll a check until it holds, with a deadline and an abort signal; `waitForStep()`:
// the same as a step whose outputs are what the check returned; `WaitForTimeoutError`: what a
// wait without `onTimeout` throws at its deadline.
// It does not bound a single check call: a check that hangs is the step timeout's business.

import { setTimeout as sleep } from 'node:timers/promises';
import { KiciError, callSite, checkWholeNumber } from './common.js';
import { step } from './steps.js';

const WAIT_EXAMPLE = "e.g. waitFor({ check: async () => fs.existsSync('ready'), intervalMs: 500, timeoutMs: 30000 })";

export class WaitForTimeoutError extends Error {
  /**
   * @param {string} message
   * @param {{timeoutMs: number, lastError?: unknown}} details `lastError`: what the last throwing check threw
   */
  constructor(message, { timeoutMs, lastError }) {
    super(message);
    this.name = 'WaitForTimeoutError';
    this.timeoutMs = timeoutMs;
    if (lastError !== undefined) this.lastError = lastError;
  }
}

function checkWaitOptions(options) {
  const fail = (message, suggestion) => new KiciError(`waitFor: ${message}`, { location: callSite(), suggestion });
  if (typeof options?.check !== 'function') throw fail('check must be a function', WAIT_EXAMPLE);
  for (const field of ['intervalMs', 'timeoutMs', 'initialDelayMs']) {
    checkWholeNumber(options[field], { field, min: 0, unit: 'ms', example: WAIT_EXAMPLE }, fail);
  }
  if (options.onTimeout !== undefined && typeof options.onTimeout !== 'function') {
    throw fail('onTimeout must be a function', 'e.g. onTimeout: () => null, or leave it out to throw WaitForTimeoutError');
  }
}

/** Sleeps `ms`; an abort rejects with the signal's reason, not Node's AbortError wrapping it. */
async function pause(ms, signal) {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

/**
 * Calls `check()` until it resolves truthy and resolves with that value. The deadline counts from
 * the call (the initial delay included); the last check runs at or after it.
 * @param {{check: () => unknown, intervalMs?: number, timeoutMs?: number, initialDelayMs?: number,
 *          swallowErrors?: boolean, onTimeout?: () => unknown, signal?: AbortSignal, description?: string}} options
 */
export async function waitFor(options) {
  checkWaitOptions(options);
  const {
    check,
    intervalMs = 2000,
    timeoutMs = 60000,
    initialDelayMs = 0,
    swallowErrors = true,
    onTimeout,
    signal,
    description = 'the condition',
  } = options;
  const deadline = performance.now() + timeoutMs;
  let lastError;
  await pause(initialDelayMs, signal);
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (!swallowErrors) throw error;
      lastError = error;
    }
    const remaining = deadline - performance.now();
    if (remaining <= 0) break;
    await pause(Math.min(intervalMs, remaining), signal);
  }
  if (onTimeout !== undefined) return onTimeout();
  throw new WaitForTimeoutError(`Timed out after ${timeoutMs}ms waiting for ${description}`, { timeoutMs, lastError });
}

/**
 * A step that waits: its check gets the step context, the step's signal stops the wait, and what
 * the check returned is the step's outputs.
 */
export function waitForStep(name, options) {
  checkWaitOptions(options);
  return step(name, (ctx) =>
    waitFor({
      ...options,
      check: () => options.check(ctx),
      signal: ctx.signal ?? options.signal,
      description: options.description ?? name,
    }),
  );
}
