// Runs one step or hook function to a result: attempts under the retry policy (and the step's
// `retryIf`), each raced against its timeout and against the parent signal (job abort, job
// deadline, fail-fast). The
// runner never waits for a function that ignores its signal: once the race is decided, the
// attempt's signal fires (killing its `$` processes) and the result is returned. The race itself
// (`race`) is also what rule checks run under.
// It does not send step.start / step.complete (execute.js does).

import { setTimeout as sleep } from 'node:timers/promises';
import { ProcessOutput, errorMessage, userStack } from '@kici-dev/shared';

/** Largest delay setTimeout accepts; longer timeouts are clamped to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why a parent signal fired; passed as the AbortController reason. */
export const Interrupt = Object.freeze({
  abort: { kind: 'abort' },
  jobTimeout: { kind: 'jobTimeout' },
  failFast: { kind: 'failFast' },
});

/**
 * Runs `fn(signal)` against `timeoutMs` (none when null/undefined) and `parentSignal`: the first
 * of fulfilment, rejection, timeout and parent abort decides, later ones are ignored. Then
 * `signal` fires, so whatever `$` the function left running is killed, and the outcome is
 * returned without waiting for a function that ignores its signal.
 * @param {(signal: AbortSignal) => unknown} fn
 * @param {{timeoutMs?: number | null, parentSignal: AbortSignal}} limits
 * @returns {Promise<{kind: 'value', value: unknown} | {kind: 'thrown', thrown: unknown}
 *   | {kind: 'timedOut'} | {kind: 'interrupted', reason: unknown}>}
 */
export function race(fn, { timeoutMs, parentSignal }) {
  return new Promise((resolve) => {
    if (parentSignal.aborted) {
      resolve({ kind: 'interrupted', reason: parentSignal.reason });
      return;
    }
    const own = new AbortController();
    let timer;
    let settled = false;
    const onParentAbort = () => finish({ kind: 'interrupted', reason: parentSignal.reason });
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      parentSignal.removeEventListener('abort', onParentAbort);
      own.abort();
      resolve(outcome);
    };
    parentSignal.addEventListener('abort', onParentAbort, { once: true });
    if (timeoutMs !== undefined && timeoutMs !== null) {
      timer = setTimeout(() => finish({ kind: 'timedOut' }), Math.min(timeoutMs, MAX_TIMER_MS));
    }
    const signal = AbortSignal.any([parentSignal, own.signal]);
    new Promise((settle) => settle(fn(signal))).then(
      (value) => finish({ kind: 'value', value }),
      (thrown) => finish({ kind: 'thrown', thrown }),
    );
  });
}

/** The `error` object of a step.complete message for a thrown value. */
function stepError(thrown) {
  if (thrown instanceof ProcessOutput) {
    const error = { message: thrown.message };
    if (thrown.exitCode !== null) error.exitCode = thrown.exitCode;
    if (thrown.signal !== null) error.signal = thrown.signal;
    return error;
  }
  return { message: errorMessage(thrown) };
}

/** Result for an attempt cut short by the parent signal. */
function interrupted(noun, name, reason) {
  if (reason === Interrupt.jobTimeout) {
    return { status: 'failed', error: { message: `${noun} '${name}' aborted: job timeout exceeded` } };
  }
  return { status: 'cancelled' };
}

/**
 * One attempt: resolves with `{ok: true, value}` (what `run` returned), `{error, cause}` or
 * `{interrupted: reason}`; `cause` is what a retryIf gets: the thrown value, or an Error with the
 * timeout text.
 */
async function runAttempt({ noun, name, run, timeoutMs, parentSignal, makeContext, output, log }) {
  const outcome = await race((signal) => output.runIn(log, async () => run(makeContext(signal))), {
    timeoutMs,
    parentSignal,
  });
  switch (outcome.kind) {
    case 'value':
      return { ok: true, value: outcome.value };
    case 'timedOut': {
      const message = `${noun} '${name}' timed out after ${timeoutMs}ms`;
      return { error: { message }, cause: new Error(message) };
    }
    case 'thrown': {
      const { thrown } = outcome;
      if (!(thrown instanceof ProcessOutput) && thrown instanceof Error && thrown.stack) {
        log.text('error', userStack(thrown.stack));
      }
      return { error: stepError(thrown), cause: thrown };
    }
    default:
      return { interrupted: outcome.reason };
  }
}

/** Wait after failed attempt `attempt` (1-based). */
function retryDelay(policy, attempt) {
  if (policy.backoff === 'fixed') return policy.delayMs;
  return Math.min(policy.delayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}

/**
 * Whether failed attempt `attempts` is retried: `retry`, `stop`, or `interrupted` when the parent
 * signal fired while the step's `retryIf(error, attempt)` ran. Without retryIf, while attempts
 * are left; a retryIf that throws means no retry.
 */
async function retryDecision(spec, outcome, attempts, maxAttempts) {
  if (attempts >= maxAttempts) return 'stop';
  if (spec.retryIf === undefined) return 'retry';
  const asked = await race(() => spec.output.runIn(spec.log, async () => spec.retryIf(outcome.cause, attempts)), {
    parentSignal: spec.parentSignal,
  });
  switch (asked.kind) {
    case 'value':
      return asked.value ? 'retry' : 'stop';
    case 'thrown':
      spec.log.line('log', `[kici] retryIf threw: ${errorMessage(asked.thrown)}; not retrying`, 'warn');
      return 'stop';
    default:
      return 'interrupted';
  }
}

/**
 * @param {{noun: 'Step' | 'Init' | 'Cache', name: string, run: Function, timeoutMs?: number | null,
 *          retry?: {maxAttempts: number, delayMs: number, backoff: string, maxDelayMs: number},
 *          retryIf?: (error: unknown, attempt: number) => unknown,
 *          parentSignal: AbortSignal, makeContext: (signal: AbortSignal) => object,
 *          output: import('./output.js').OutputRouter, log: import('./output.js').StepLog}} spec
 *   `noun` starts the timeout texts: `Step '<name>' timed out after <ms>ms` (hooks too), `Init '<name>' ...`,
 *   and the job deadline's `<noun> '<name>' aborted: job timeout exceeded`
 * @returns {Promise<{status: 'success' | 'failed' | 'cancelled', attempts: number, error?: object, value?: unknown}>}
 *   `value`: what the successful attempt's `run` returned
 */
export async function runStep(spec) {
  const maxAttempts = spec.retry?.maxAttempts ?? 1;
  for (let attempts = 1; ; attempts += 1) {
    const outcome = await runAttempt(spec);
    if (outcome.ok) return { status: 'success', attempts, value: outcome.value };
    if (outcome.interrupted) return { ...interrupted(spec.noun, spec.name, outcome.interrupted), attempts };
    const decision = await retryDecision(spec, outcome, attempts, maxAttempts);
    if (decision === 'interrupted') return { ...interrupted(spec.noun, spec.name, spec.parentSignal.reason), attempts };
    if (decision === 'stop') return { status: 'failed', attempts, error: outcome.error };
    const delayMs = retryDelay(spec.retry, attempts);
    spec.log.line(
      'log',
      `[kici] Attempt ${attempts}/${maxAttempts} failed: ${outcome.error.message}; retrying in ${delayMs}ms`,
      'warn',
    );
    try {
      await sleep(Math.min(delayMs, MAX_TIMER_MS), undefined, { signal: spec.parentSignal });
    } catch {
      // Only an abort rejects this sleep: the parent signal fired between attempts.
      return { ...interrupted(spec.noun, spec.name, spec.parentSignal.reason), attempts };
    }
  }
}
