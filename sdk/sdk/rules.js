// Rules (`rule`, `skip`) and hook factories (`onSuccess`, `onFailure`, `cleanup`, `onCancel`,
// `beforeStep`, `afterStep`). A rule is `{_tag: 'Rule', label, check}` where `check(ctx)`
// returns (or resolves to) true to let the job or step run; `skip` negates its check. A hook is
// `{_tag: 'Hook', kind, run, timeout}`. Also the checks that a `rules` option holds rules and
// that hooks are well formed, and the order rules are evaluated in (`firstBlockingRule`, which
// the runner and `evaluateRules` share).
// Running hooks and bounding rule checks in time are the runner's job, not this module's.

import { errorMessage } from '@kici-dev/shared';
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
 * Goes through `rules` in order and stops at the first that does not pass. `judge(rule)`
 * resolves with `{passed}` (`problem` when the check threw or timed out) or `{interrupted: true}`.
 * @returns {Promise<{label: string, problem?: string} | {interrupted: true} | undefined>} the
 *   blocking rule, `interrupted` when judging was cut short, undefined when every rule passed
 */
export async function firstBlockingRule(rules, judge) {
  for (const rule of rules) {
    const verdict = await judge(rule);
    if (verdict.interrupted) return { interrupted: true };
    if (!verdict.passed) {
      return verdict.problem === undefined ? { label: rule.label } : { label: rule.label, problem: verdict.problem };
    }
  }
  return undefined;
}

/**
 * Evaluates rule()/skip() values against `ctx` in the runner's order: the first that does not
 * pass (or throws) decides. `label` names what the rules guard in error texts; `cb(ruleLabel,
 * passed)` hears each verdict.
 * @returns {Promise<{passed: true} | {passed: false, label: string, problem?: string}>}
 */
export async function evaluateRules(rules, ctx, label = 'evaluateRules', cb) {
  const fail = (message, suggestion) => new KiciError(`${label}: ${message}`, { location: callSite(), suggestion });
  const blocking = await firstBlockingRule(normalizeRules(rules, fail), async (rule) => {
    let verdict;
    try {
      verdict = { passed: Boolean(await rule.check(ctx)) };
    } catch (error) {
      verdict = { passed: false, problem: `threw: ${errorMessage(error)}` };
    }
    cb?.(rule.label, verdict.passed);
    return verdict;
  });
  return blocking === undefined ? { passed: true } : { passed: false, ...blocking };
}

/**
 * Normalises `fn | {run, timeout} | Hook` into a Hook of the given kind.
 * @param {'onSuccess' | 'onFailure' | 'cleanup' | 'onCancel' | 'beforeStep' | 'afterStep'} kind
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
export const beforeStep = (input) => toHook('beforeStep', input);
export const afterStep = (input) => toHook('afterStep', input);

/** The four hooks of a job or workflow options object, normalised. */
export function hooksOf(options) {
  return {
    onSuccess: toHook('onSuccess', options.onSuccess),
    onFailure: toHook('onFailure', options.onFailure),
    cleanup: toHook('cleanup', options.cleanup),
    onCancel: toHook('onCancel', options.onCancel),
  };
}

/** A job's hooks around each step (workflows have none), normalised. */
export function stepHooksOf(options) {
  return { beforeStep: toHook('beforeStep', options.beforeStep), afterStep: toHook('afterStep', options.afterStep) };
}
