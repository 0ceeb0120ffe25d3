// The one place that names and numbers things the author left unnamed, used by `job()`
// validation, by describe and by execute so the three always agree:
// - steps: unnamed steps are `step-<N>` (N counts unnamed steps of the job from 1, parallel
//   children included, in order); flat indices number steps and parallel children from 0 (a
//   group consumes no index); groups default to `parallel-<ordinal>` with id `g<ordinal-1>`;
// - jobs: unnamed jobs are `job-<N>` (N counts the unnamed static jobs of the workflow from 1,
//   dynamicJob() entries are not jobs; the jobs a generator returns are counted on their own).
// It does not validate or run anything.

/**
 * @typedef {{index: number, name: string, step: object, group: FlatGroup | null}} FlatStep
 * @typedef {{kind: 'parallel', name: string, groupId: string, failFast: boolean,
 *            maxParallel: number | undefined, group: object, children: FlatStep[]}} FlatGroup
 * @typedef {{kind: 'step', row: FlatStep} | FlatGroup} FlatEntry
 */

/**
 * @param {{steps: object[]}} job a Job (or anything with normalised `steps`)
 * @returns {{entries: FlatEntry[], flat: FlatStep[]}} entries in authoring order, and every
 *   runnable step by flat index
 */
export function flattenSteps(job) {
  let unnamed = 0;
  let ordinal = 0;
  const flat = [];
  const entries = [];
  const row = (step, group) => {
    const name = step.name ?? `step-${(unnamed += 1)}`;
    const flatStep = { index: flat.length, name, step, group };
    flat.push(flatStep);
    return flatStep;
  };
  for (const item of job.steps) {
    if (item._tag !== 'ParallelGroup') {
      entries.push({ kind: 'step', row: row(item, null) });
      continue;
    }
    ordinal += 1;
    const group = {
      kind: 'parallel',
      name: item.name ?? `parallel-${ordinal}`,
      groupId: `g${ordinal - 1}`,
      failFast: item.failFast,
      maxParallel: item.maxParallel,
      group: item,
      children: [],
    };
    for (const child of item.steps) group.children.push(row(child, group));
    entries.push(group);
  }
  return { entries, flat };
}

/**
 * @param {{name?: string}[]} jobs Job values in order
 * @returns {string[]} their names, by position (`job-<N>` for the N-th unnamed one)
 */
export function nameJobs(jobs) {
  let unnamed = 0;
  return jobs.map((job) => job.name ?? `job-${(unnamed += 1)}`);
}

/**
 * @param {{jobs: {_tag: string, name?: string}[]}} workflow
 * @returns {Map<object, string>} the name of every static job of the workflow (DynamicJob
 *   entries left out)
 */
export function jobNames(workflow) {
  const jobs = workflow.jobs.filter((entry) => entry._tag === 'Job');
  const names = nameJobs(jobs);
  return new Map(jobs.map((job, index) => [job, names[index]]));
}
