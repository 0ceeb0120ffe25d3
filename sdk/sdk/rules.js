// Rules (`rule`, `skip`) and hook factories (`onSuccess`, `onFailure`, `cleanup`, `onCancel`).
// A rule is `{_tag: 'Rule', label, check}` where `check(ctx)` returns (or resolves to) true to
// let the job or step run; `skip` negates its check. A hook is `{_tag: 'Hook', kind, run,
// timeout}`. Also the checks that a `rules` option holds rules and that hooks are well formed.
// Evaluating rules and running hooks is the runner's job, not this module's.

import { KiciError, callSite, checkWholeNumber, toList } from './common.js';

const RULE_EXAMPLE = "e.g. rule('main only', ({ event }) => event.targetBranch === 'main')";
const RULES_EXAMPLE =
  "give each check a label: rules: [rule('main only', ({ event }) => event.targetBranch === 'main')]";

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
 * The `rules` option of a workflow, job or step as a list of Rule values.
 * @param {(message: string, suggestion: string) => KiciError} fail builds the caller's error
 */
export function normalizeRules(rules, fail) {
  const list = toList(rules);
  if (!list.every((entry) => entry?._tag === 'Rule')) {
    throw fail('rules must be created with rule() or skip()', RULES_EXAMPLE);
  }
  return list;
}

/**
 * Normalises `fn | {run, timeout} | Hook` into a Hook of the given kind.
 * @param {'onSuccess' | 'onFailure' | 'cleanup' | 'onCancel'} kind
 */
export function toHook(kind, input) {
  if (input === undefined || input === null) return undefined;
  if (input?._tag === 'Hook') return { ...input, kind };
  const fail = (message, suggestion) => new KiciError(`${kind} hook: ${message}`, { location: callSite(), suggestion });
  const { run, timeout } = typeof input === 'function' ? { run: input } : input;
  if (typeof run !== 'function') {
    throw fail(
      'run must be a function',
      `e.g. ${kind}: async (ctx) => { ... } or ${kind}: { run: async (ctx) => { ... }, timeout: 60000 }`,
    );
  }
  checkWholeNumber(
    timeout,
    { field: 'timeout', min: 1, unit: 'ms', example: `e.g. ${kind}: { run, timeout: 60000 }, or leave it out for 5 minutes` },
    fail,
  );
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
