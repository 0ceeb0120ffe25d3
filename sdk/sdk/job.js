// `job()`: validates the options and returns `{_tag: 'Job'}` with normalised fields (runsOn as
// `{labels, exclude, pick}`, needs as `{target, when}`, steps as Step / ParallelGroup values,
// rules as Rule values, hooks as Hook values, `environment` / `environments` as one list of
// names and functions, approval as in approval.js, init as in init.js, cache as in cache.js). Error texts are part of
// the contract (sdk/PROTOCOL.md). Also the one definition of a valid matrix value (`isMatrixValue`), which
// the runner applies to what dynamic matrix functions return, and of a valid needs entry
// (`normalizeNeed`, which dynamicJob() shares).
// It does not produce the lock-file shape (describe does) and runs nothing: env and environment
// functions are called by the host or the runner (execute), never here.

import { normalizeApproval } from './approval.js';
import { normalizeCacheOption } from './cache.js';
import { GROUP_NEED_PREFIX, KiciError, UNNAMED, callSite, checkWholeNumber, toList } from './common.js';
import { normalizeInit } from './init.js';
import { defineJobResult } from './outputs.js';
import { flattenSteps } from './naming.js';
import { hooksOf, normalizeRules, stepHooksOf } from './rules.js';
import { stepFromFunction } from './steps.js';

const NEEDS_WHEN = ['on-success', 'always', 'on-skip', 'on-failure'];
const RUNS_ON_PICK = ['deterministic', 'any'];
const NEEDS_EXAMPLE = "e.g. needs: ['build', { name: 'test', when: 'always' }]";
const ENVIRONMENT_EXAMPLE =
  "e.g. environment: 'production' or environment: (event) => (event.targetBranch === 'main' ? 'production' : 'staging')";
const ENV_EXAMPLE =
  "e.g. env: { NODE_ENV: 'production' } or env: (event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'staging' })";

/**
 * job(name, options) | job(options)
 */
export function job(nameOrOptions, maybeOptions) {
  const location = callSite();
  const options = (typeof nameOrOptions === 'string' ? maybeOptions : nameOrOptions) ?? {};
  const name = typeof nameOrOptions === 'string' ? nameOrOptions : options.name;
  const fail = (message, suggestion, code) =>
    new KiciError(`Job "${name ?? UNNAMED}": ${message}`, { location, suggestion, code });

  const runsOn = normalizeRunsOn(options.runsOn, fail);
  if (options.concurrencyGroup !== undefined && !isEnvironment(options.concurrencyGroup)) {
    throw fail(
      'concurrencyGroup must be a non-empty string or a function (event) => string',
      "e.g. concurrencyGroup: 'deploy-production' or concurrencyGroup: (event) => `deploy-${event.targetBranch}`",
    );
  }
  const steps = normalizeSteps(options, fail);
  checkGroupChildNames(steps);
  checkWholeNumber(
    options.timeout,
    { field: 'timeout', min: 1, unit: 'ms', example: 'e.g. timeout: 30 * 60 * 1000 for 30 minutes' },
    fail,
  );
  checkWholeNumber(
    options.maxParallel,
    { field: 'maxParallel', min: 1, unit: 'jobs', example: 'e.g. maxParallel: 2 runs two matrix jobs at a time' },
    fail,
  );
  if (options.failFast !== undefined && typeof options.failFast !== 'boolean') {
    throw fail('failFast must be true or false', 'e.g. failFast: true cancels the other matrix jobs when one fails');
  }
  checkWholeNumber(
    options.gracePeriod,
    { field: 'gracePeriod', min: 0, unit: 'seconds', example: 'e.g. gracePeriod: 30' },
    fail,
  );

  const value = {
    _tag: 'Job',
    name,
    location,
    runsOn,
    needs: toList(options.needs).map((entry) => normalizeNeed(entry, fail)),
    steps,
    matrix: normalizeMatrix(options.matrix, fail),
    include: options.include,
    exclude: options.exclude,
    rules: normalizeRules(options.rules, fail),
    description: options.description,
    checkout: options.checkout !== false,
    init: normalizeInit(options.init, fail),
    // Restored before the first step, saved after the last one succeeded (the runner's job).
    cache: normalizeCacheOption(options.cache, fail),
    environments: normalizeEnvironments(options, fail),
    env: normalizeEnv(options.env, fail),
    approval: normalizeApproval(options.approval, fail),
    secrets: normalizeSecretNames(options.secrets, fail),
    timeout: options.timeout,
    gracePeriod: options.gracePeriod,
    maxParallel: options.maxParallel,
    concurrencyGroup: options.concurrencyGroup,
    failFast: options.failFast,
    hooks: { ...hooksOf(options), ...stepHooksOf(options) },
    optionKeys: Object.keys(options),
  };
  defineJobResult(value, name ?? UNNAMED);
  return value;
}

function isLabel(value) {
  return typeof value === 'string' || value instanceof RegExp;
}

function normalizeRunsOn(runsOn, fail) {
  const spec = runsOn !== undefined && !isLabel(runsOn) && !Array.isArray(runsOn) ? runsOn : { labels: runsOn };
  const labels = toList(spec.labels);
  if (labels.length === 0) {
    throw fail('one of runsOn or runsOnAll is required', "add runsOn, e.g. runsOn: 'kici:os:linux'");
  }
  const exclude = toList(spec.exclude);
  if (![...labels, ...exclude].every(isLabel))
    throw fail('runsOn labels must be strings or RegExps', "e.g. runsOn: ['kici:os:linux', 'gpu-*', /^arm/]");
  const pick = spec.pick ?? 'deterministic';
  if (!RUNS_ON_PICK.includes(pick))
    throw fail("runsOn.pick must be 'deterministic' or 'any'", "leave pick out for 'deterministic'");
  return { labels, exclude, pick };
}

const isEnvironment = (value) => (typeof value === 'string' && value !== '') || typeof value === 'function';

/** `environment` or `environments` as one list of names and `(event) => string` functions. */
function normalizeEnvironments({ environment, environments }, fail) {
  if (environment !== undefined && environments !== undefined) {
    throw fail(
      'use either environment or environments, not both',
      "keep environments and add the environment to it, e.g. environments: ['production', 'audit']",
    );
  }
  if (environment !== undefined) {
    if (!isEnvironment(environment)) {
      throw fail('environment must be a non-empty string or a function (event) => string', ENVIRONMENT_EXAMPLE);
    }
    return [environment];
  }
  if (environments === undefined) return [];
  if (!Array.isArray(environments)) {
    throw fail(
      'environments must be an array of environment names or functions (event) => string',
      "e.g. environments: ['production', 'audit']",
    );
  }
  environments.forEach((entry, index) => {
    if (!isEnvironment(entry)) {
      throw fail(
        `environments[${index}] must be a non-empty string or a function (event) => string`,
        ENVIRONMENT_EXAMPLE,
      );
    }
  });
  return environments;
}

function normalizeEnv(env, fail) {
  const isObject = typeof env === 'object' && env !== null && !Array.isArray(env);
  if (env === undefined || isObject || typeof env === 'function') return env;
  throw fail('env must be an object or a function (event) => object', ENV_EXAMPLE);
}

function normalizeSteps(options, fail) {
  if (options.run !== undefined && options.steps !== undefined) {
    throw fail('use either run or steps, not both', 'keep steps and add the run function to it as a step');
  }
  if (options.run !== undefined) return [stepFromFunction(options.run)];
  const items = toList(options.steps);
  if (items.length === 0) {
    throw fail(
      'steps is required (or run for a single step)',
      "add steps, e.g. steps: [step('build', async ({ $ }) => { await $`make` })]",
    );
  }
  return items.map((item, index) => {
    if (typeof item === 'function') return stepFromFunction(item);
    if (item?._tag === 'Step' || item?._tag === 'ParallelGroup') return item;
    throw fail(
      `steps[${index}] must be a step(), a parallel() group or a function`,
      "wrap it: step('name', async (ctx) => { ... })",
    );
  });
}

/** Names must be unique inside a parallel group (named or generated), checked with the group's own call site. */
function checkGroupChildNames(steps) {
  for (const entry of flattenSteps({ steps }).entries) {
    if (entry.kind !== 'parallel') continue;
    const seen = new Set();
    for (const child of entry.children) {
      if (seen.has(child.name)) {
        throw new KiciError(`parallel group "${entry.name}": duplicate step name "${child.name}"`, {
          location: entry.group.location,
          suggestion: 'give every step of the group its own name',
        });
      }
      seen.add(child.name);
    }
  }
}

/**
 * A needs entry (a job, a job name or `{name, when}`) as `{target, when}`.
 * @param {(message: string, suggestion: string) => KiciError} fail builds the caller's error
 */
export function normalizeNeed(entry, fail) {
  const { target, when = 'on-success' } =
    typeof entry === 'string' || entry?._tag === 'Job'
      ? { target: entry }
      : entry?._tag === 'DynamicGroup'
        ? { target: `${GROUP_NEED_PREFIX}${entry.group}`, when: entry.when }
        : { target: entry?.name, when: entry?.when };
  if (!(typeof target === 'string' || target?._tag === 'Job')) {
    throw fail('needs entries must be a job, a job name or {name, when}', NEEDS_EXAMPLE);
  }
  const validWhen = NEEDS_WHEN.includes(when) || (Array.isArray(when) && when.every((s) => typeof s === 'string'));
  if (!validWhen) {
    throw fail(
      "needs when must be 'on-success', 'always', 'on-skip', 'on-failure' or a list of job statuses",
      NEEDS_EXAMPLE,
    );
  }
  return { target, when };
}

const isStrings = (list) => Array.isArray(list) && list.every((item) => typeof item === 'string');

/** True for a matrix value: a `string[]` (one dimension) or a `Record<string, string[]>`. */
export function isMatrixValue(value) {
  if (isStrings(value)) return true;
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every(isStrings);
}

function normalizeMatrix(matrix, fail) {
  if (matrix === undefined || typeof matrix === 'function' || isMatrixValue(matrix)) return matrix;
  throw fail(
    'matrix must be a string[], a Record<string, string[]> or a function',
    "e.g. matrix: { node: ['18', '20'] }",
  );
}

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `secrets`: the keys the job needs; a job whose environments do not bind one fails before it starts. */
function normalizeSecretNames(secrets, fail) {
  if (secrets === undefined) return undefined;
  if (!Array.isArray(secrets) || !secrets.every((name) => typeof name === 'string' && SECRET_NAME.test(name))) {
    throw fail('secrets must be a list of secret names', "e.g. secrets: ['DEPLOY_KEY']");
  }
  return secrets;
}
