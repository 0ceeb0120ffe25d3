// Rules (`rule`, `skip`) and hook factories (`onSuccess`, `onFailure`, `cleanup`, `onCancel`).
// A rule is `{_tag: 'Rule', label, check}` where `check(ctx)` returns (or resolves to) true to
// let the job or step run; `skip` negates its check. A hook is `{_tag: 'Hook', kind, run,
// timeout}`. Evaluating rules and running hooks is the runner's job, not this module's.

import { KiciError, callSite } from './common.js';

const RULE_EXAMPLE = "e.g. rule('main only', ({ event }) => event.targetBranch === 'main')";

function checkLabel(label) {
  if (typeof label !== 'string' || label === '') {
    throw new KiciError('rule() needs a label', { location: callSite(), suggestion: RULE_EXAMPLE });
  }
}

export function rule(label, check = () => true) {
  checkLabel(label);
  return { _tag: 'Rule', label, check };
}

export function skip(label, check = () => true) {
  checkLabel(label);
  return { _tag: 'Rule', label, check: async (ctx) => !(await check(ctx)) };
}

/**
 * Normalises `fn | {run, timeout} | Hook` into a Hook of the given kind.
 * @param {'onSuccess' | 'onFailure' | 'cleanup' | 'onCancel'} kind
 */
export function toHook(kind, input) {
  if (input === undefined || input === null) return undefined;
  if (input?._tag === 'Hook') return { ...input, kind };
  const { run, timeout } = typeof input === 'function' ? { run: input } : input;
  if (typeof run !== 'function') {
    throw new KiciError(`${kind} hook: run must be a function`, {
      location: callSite(),
      suggestion: `e.g. ${kind}: async (ctx) => { ... } or ${kind}: { run: async (ctx) => { ... }, timeout: 60000 }`,
    });
  }
  return { _tag: 'Hook', kind, run, timeout };
}

export const onSuccess = (input) => toHook('onSuccess', input);
export const onFailure = (input) => toHook('onFailure', input);
export const cleanup = (input) => toHook('cleanup', input);
export const onCancel = (input) => toHook('onCancel', input);

/** The four hooks of a job or workflow options object, normalised. */
export function hooksOf(options) {
  return {
    onSuccess: toHook('onSuccess', options.onSuccess),
    onFailure: toHook('onFailure', options.onFailure),
    cleanup: toHook('cleanup', options.cleanup),
    onCancel: toHook('onCancel', options.onCancel),
  };
}
