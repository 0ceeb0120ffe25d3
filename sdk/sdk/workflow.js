// `workflow()`: validates the options and returns `{_tag: 'Workflow'}` with triggers, jobs
// (job() and dynamicJob() values), rules, hooks, the concurrency group and the install options
// (registries.js) normalised. The runner finds workflows among a module's exports by that tag.
// It does not check job names or the needs graph (the Rust compiler does).

import { KiciError, callSite, checkWholeNumber, describeValue, didYouMean, isObject, toList } from './common.js';
import { normalizeInstallEnv, normalizeRegistries } from './registries.js';
import { hooksOf, normalizeRules } from './rules.js';

const TRIGGER_FACTORIES =
  'push(), pr(), tag(), dispatch(), schedule(), kiciEvent(), workflowComplete(), jobComplete() or genericWebhook()';
const JOBS_EXAMPLE = "e.g. jobs: [job('build', { runsOn: 'kici:os:linux', steps: [...] })]";
const CONCURRENCY_KEYS = ['group', 'cancelInProgress', 'max'];
const CONCURRENCY_EXAMPLE = 'e.g. concurrency: { group: ({ branch }) => `deploy-${branch}`, cancelInProgress: false }';

/**
 * workflow(name, {jobs, on?, rules?, description?, hashFiles?, registries?, installEnv?, concurrency?, timeout?,
 *   onSuccess?, onFailure?, cleanup?, onCancel?})
 */
export function workflow(name, options = {}) {
  const location = callSite();
  if (typeof name !== 'string' || name === '') {
    throw new KiciError('workflow() needs a name', {
      location,
      suggestion: "pass the name first, e.g. workflow('ci', { jobs: [...] })",
    });
  }
  const fail = (message, suggestion) => new KiciError(`Workflow "${name}": ${message}`, { location, suggestion });
  const jobs = options.jobs;
  if (!Array.isArray(jobs) || jobs.length === 0) throw fail('jobs must be a non-empty array', JOBS_EXAMPLE);
  jobs.forEach((item, index) => {
    if (item?._tag !== 'Job' && item?._tag !== 'DynamicJob') {
      throw fail(`jobs[${index}] is not a job (use job() or dynamicJob())`, JOBS_EXAMPLE);
    }
  });
  const triggers = toList(options.on);
  const notTrigger = triggers.findIndex((entry) => entry?._tag !== 'Trigger');
  if (notTrigger >= 0) {
    throw fail(
      `on must be triggers created with ${TRIGGER_FACTORIES}, got ${describeValue(triggers[notTrigger])}`,
      "call the factories, e.g. on: push({ branches: 'main' }) or on: [push(), pr()]",
    );
  }
  checkWholeNumber(
    options.timeout,
    { field: 'timeout', min: 1, unit: 'ms', example: 'e.g. timeout: 60 * 60 * 1000 for one hour' },
    fail,
  );
  return {
    _tag: 'Workflow',
    name,
    location,
    triggers,
    jobs: [...jobs],
    rules: normalizeRules(options.rules, fail),
    description: options.description,
    hashFiles: options.hashFiles === undefined ? undefined : toList(options.hashFiles),
    registries: normalizeRegistries(options.registries, fail),
    installEnv: normalizeInstallEnv(options.installEnv, fail),
    concurrency: normalizeConcurrency(options.concurrency, fail),
    timeout: options.timeout,
    hooks: hooksOf(options),
    optionKeys: Object.keys(options),
  };
}

/**
 * `concurrency` as `{group, cancelInProgress, max}` with the defaults filled in (`true`, `1`);
 * undefined when not given. The group function runs on the agent, before the job's rules.
 */
function normalizeConcurrency(concurrency, fail) {
  if (concurrency === undefined) return undefined;
  if (!isObject(concurrency)) throw fail('concurrency must be {group, cancelInProgress?, max?}', CONCURRENCY_EXAMPLE);
  const unknown = Object.keys(concurrency).find((key) => !CONCURRENCY_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `concurrency has no option '${unknown}' (use group, cancelInProgress or max)`,
      `${didYouMean(unknown, CONCURRENCY_KEYS)}${CONCURRENCY_EXAMPLE}`,
    );
  }
  const { group, cancelInProgress = true, max = 1 } = concurrency;
  if (typeof group !== 'function') {
    throw fail('concurrency.group must be a function ({ branch, event }) => string', CONCURRENCY_EXAMPLE);
  }
  if (typeof cancelInProgress !== 'boolean') {
    throw fail('concurrency.cancelInProgress must be true or false', 'leave cancelInProgress out for true');
  }
  if (!Number.isSafeInteger(max) || max < 1) {
    throw fail('concurrency.max must be an integer >= 1', 'e.g. max: 2 for two runs at a time; leave it out for 1');
  }
  return { group, cancelInProgress, max };
}
