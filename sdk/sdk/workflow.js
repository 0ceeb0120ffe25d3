// `workflow()`: validates the options and returns `{_tag: 'Workflow'}` with triggers, jobs,
// rules and hooks normalised. The runner finds workflows among a module's exports by that tag.
// It does not check job names or the needs graph (the Rust compiler does).

import { KiciError, callSite, toList } from './common.js';
import { hooksOf } from './rules.js';

/**
 * workflow(name, {jobs, on?, rules?, description?, hashFiles?, timeout?, onSuccess?, onFailure?, cleanup?, onCancel?})
 */
export function workflow(name, options = {}) {
  const location = callSite();
  if (typeof name !== 'string' || name === '') {
    throw new KiciError('workflow() needs a name', {
      location,
      suggestion: "pass the name first, e.g. workflow('ci', { jobs: [...] })",
    });
  }
  const jobs = options.jobs;
  if (!Array.isArray(jobs) || jobs.length === 0) {
    throw new KiciError(`Workflow "${name}": jobs must be a non-empty array`, {
      location,
      suggestion: "e.g. jobs: [job('build', { runsOn: 'kici:os:linux', steps: [...] })]",
    });
  }
  jobs.forEach((item, index) => {
    if (item?._tag !== 'Job') {
      throw new KiciError(`Workflow "${name}": jobs[${index}] is not a job (use job())`, {
        location,
        suggestion: "e.g. jobs: [job('build', { runsOn: 'kici:os:linux', steps: [...] })]",
      });
    }
  });
  return {
    _tag: 'Workflow',
    name,
    location,
    triggers: toList(options.on),
    jobs: [...jobs],
    rules: toList(options.rules),
    description: options.description,
    hashFiles: options.hashFiles === undefined ? undefined : toList(options.hashFiles),
    timeout: options.timeout,
    hooks: hooksOf(options),
  };
}
