// A workflow's concurrency group, in execute: the runner calls the workflow's
// `concurrency.group({branch, event})` (at most 30 s; its console output goes to the prepare
// log), reports the key to the host (`concurrency.report`) and waits for the host's
// `concurrency.ack`: `proceed`, `wait` (its reason logged, then more waiting) or `cancel`, for at
// most the request's `concurrencyWaitTimeoutMs`. Which runs of a group may go at once
// (`cancelInProgress`, `max`) is the host's decision, never the runner's.

import { errorMessage, errorStack, userStack } from '@kici-dev/shared';
import { describeReturned } from './resolve.js';
import { MAX_TIMER_MS, race } from './run-step.js';

/** How long the group function may take (`await`s included). */
export const GROUP_TIMEOUT_MS = 30_000;

/** How long the runner waits for its turn when the request does not say (`KICI_CONCURRENCY_WAIT_TIMEOUT_MS`). */
export const DEFAULT_WAIT_TIMEOUT_MS = 3_600_000;

/**
 * While it waits, the runner reports again this often: a report or an answer lost to a
 * reconnect is then only a delay, and the host answers a repeated report from the run's place.
 */
export const REPORT_AGAIN_MS = 30_000;

/**
 * Computes the group key, reports it and waits for the host's answer. Failures are also logged
 * on `log` (level `error`).
 * @param {(ctx: {branch: string | undefined, event: object}) => unknown} group
 * @param {{request: object, output: import('./output.js').OutputRouter, log: import('./output.js').StepLog,
 *          signal: AbortSignal, send: (message: object) => void,
 *          onAck: (listener: (message: object) => void) => () => void}} scope
 *   `signal` (an abort) stops the group function and the wait; `onAck` subscribes to the host's
 *   `concurrency.ack` messages and returns how to unsubscribe
 * @returns {Promise<{proceed: true} | {interrupted: true} | {status: 'failed' | 'cancelled', error: string}>}
 *   `status`: how the job ends without running anything
 */
export async function takeTurn(group, { request, output, log, signal, send, onAck }) {
  const key = await groupKey(group, { request, output, log, signal });
  if (key.value === undefined) return key;
  const waitTimeoutMs = request.concurrencyWaitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const turn = await awaitTurn(key.value, { send, onAck, signal, waitTimeoutMs, log });
  if (turn.status === 'failed') log.line('log', turn.error, 'error');
  return turn;
}

/** Calls the group function: `{value}` (the key), `{interrupted}`, or the failed job's `{status, error}`. */
async function groupKey(group, { request, output, log, signal }) {
  // The branch a run is about: a pull request's head, else the pushed branch or tag.
  const context = { branch: request.event?.sourceBranch ?? request.event?.targetBranch, event: request.event };
  const outcome = await output.runIn(log, () =>
    race(() => group(context), { timeoutMs: GROUP_TIMEOUT_MS, parentSignal: signal }),
  );
  const failed = (error, logged = error) => {
    log.text('error', logged);
    return { status: 'failed', error };
  };
  switch (outcome.kind) {
    case 'value':
      if (typeof outcome.value === 'string' && outcome.value !== '') return { value: outcome.value };
      return failed(
        `Workflow concurrency group failed: returned ${describeReturned(outcome.value)} instead of a non-empty string`,
      );
    case 'thrown':
      return failed(
        `Workflow concurrency group failed: ${errorMessage(outcome.thrown)}`,
        `Workflow concurrency group failed: ${userStack(errorStack(outcome.thrown))}`,
      );
    case 'timedOut':
      return failed(`Workflow concurrency group did not return within ${GROUP_TIMEOUT_MS}ms`);
    default:
      return { interrupted: true };
  }
}

/** Sends `concurrency.report` and resolves with the first ack that decides, the wait limit or `signal`. */
function awaitTurn(key, { send, onAck, signal, waitTimeoutMs, log }) {
  if (signal.aborted) return Promise.resolve({ interrupted: true });
  const timedOut = {
    status: 'failed',
    error:
      `Timed out after ${waitTimeoutMs}ms waiting for a turn in concurrency group '${key}'` +
      ' (KICI_CONCURRENCY_WAIT_TIMEOUT_MS)',
  };
  return new Promise((resolve) => {
    const report = () => send({ type: 'concurrency.report', group: key });
    let logged = false;
    const finish = (outcome) => {
      clearTimeout(timer);
      clearInterval(again);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => finish({ interrupted: true });
    const timer = setTimeout(() => finish(timedOut), Math.min(waitTimeoutMs, MAX_TIMER_MS));
    signal.addEventListener('abort', onAbort, { once: true });
    const unsubscribe = onAck(({ action, reason }) => {
      const said = typeof reason === 'string' && reason !== '' ? reason : undefined;
      if (action === 'proceed') finish({ proceed: true });
      if (action === 'cancel') {
        finish({ status: 'cancelled', error: said ?? `Cancelled in concurrency group '${key}'` });
      }
      if (action === 'wait' && !logged) {
        logged = true;
        log.line('log', said ?? `Waiting for a turn in concurrency group '${key}'`, 'info');
      }
    });
    const again = setInterval(report, REPORT_AGAIN_MS);
    report();
  });
}
