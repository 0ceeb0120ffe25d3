// `job()`: validates the options and returns `{_tag: 'Job'}` with normalised fields (runsOn as
// `{labels, exclude, pick}`, needs as `{target, when}`, steps as Step / ParallelGroup values,
// rules as Rule values, hooks as Hook values). Error texts are part of the contract
// (sdk/PROTOCOL.md). Also the one definition of a valid matrix value (`isMatrixValue`), which
// the runner applies to what dynamic matrix functions return, and of a valid needs entry
// (`normalizeNeed`, which dynamicJob() shares).
// It does not produce the lock-file shape (describe does) and runs nothing.

import { KiciError, UNNAMED, callSite, checkWholeNumber, toList } from './common.js';
import { flattenSteps } from './naming.js';
import { hooksOf, normalizeRules } from './rules.js';
import { stepFromFunction } from './steps.js';

const NEEDS_WHEN = ['on-success', 'always', 'on-skip', 'on-failure'];
const RUNS_ON_PICK = ['deterministic', 'any'];
const NEEDS_EXAMPLE = "e.g. needs: ['build', { name: 'test', when: 'always' }]";

/**
 * job(name, options) | job(options)
 */
export function job(nameOrOptions, maybeOptions) {
  const location = callSite();
  const options = (typeof nameOrOptions === 'string' ? maybeOptions : nameOrOptions) ?? {};
  const name = typeof nameOrOptions === 'string' ? nameOrOptions : options.name;
  const fail = (message, suggestion) => new KiciError(`Job "${name ?? UNNAMED}": ${message}`, { location, suggestion });

  if (typeof options.env === 'function') {
    throw new KiciError(`Job "${name ?? UNNAMED}": env as a function is not implemented by this build of KiCI`, {
      location,
      code: 'E109',
      suggestion: "give env as an object, e.g. env: { NODE_ENV: 'production' }",
    });
  }
  const runsOn = normalizeRunsOn(options.runsOn, fail);
  const steps = normalizeSteps(options, fail);
  checkGroupChildNames(steps);
  checkWholeNumber(
    options.timeout,
    { field: 'timeout', min: 1, unit: 'ms', example: 'e.g. timeout: 30 * 60 * 1000 for 30 minutes' },
    fail,
  );
  checkWholeNumber(
    options.gracePeriod,
    { field: 'gracePeriod', min: 0, unit: 'seconds', example: 'e.g. gracePeriod: 30' },
    fail,
  );

  return {
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
    env: options.env,
    timeout: options.timeout,
    gracePeriod: options.gracePeriod,
    hooks: hooksOf(options),
    optionKeys: Object.keys(options),
  };
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
    typeof entry === 'string' || entry?._tag === 'Job' ? { target: entry } : { target: entry?.name, when: entry?.when };
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
