// `workflow()`: validates the options and returns `{_tag: 'Workflow'}` with triggers, jobs
// (job() and dynamicJob() values), rules, hooks and the install options (registries.js)
// normalised. The runner finds workflows among a module's exports by that tag.
// It does not check job names or the needs graph (the Rust compiler does).

import { KiciError, callSite, checkWholeNumber, describeValue, toList } from './common.js';
import { normalizeInstallEnv, normalizeRegistries } from './registries.js';
import { hooksOf, normalizeRules } from './rules.js';

const JOBS_EXAMPLE = "e.g. jobs: [job('build', { runsOn: 'kici:os:linux', steps: [...] })]";

/**
 * workflow(name, {jobs, on?, rules?, description?, hashFiles?, registries?, installEnv?, timeout?, onSuccess?,
 *   onFailure?, cleanup?, onCancel?})
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
      `on must be triggers created with push(), pr(), tag() or dispatch(), got ${describeValue(triggers[notTrigger])}`,
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
    timeout: options.timeout,
    hooks: hooksOf(options),
    optionKeys: Object.keys(options),
  };
}
