// Dynamic job generators (`dynamicJob()` entries of a workflow's jobs), for the evaluate kind
// `jobs` and for execute with a `dynamic` source: call the generator with a DynamicJobContext
// (its output on the given log), check what it returned (an array of at most 100 job() values
// with distinct names) and name the jobs (`job-<N>` counting unnamed ones of the array). In
// execute, pick the job the host asked for out of a fresh run of the generator.
// It does not describe jobs (describe.js) nor run them (execute.js), and bounds no time (the host
// does).

import { nameJobs } from '@kici-dev/sdk/internal';
import { errorMessage, errorStack } from '@kici-dev/shared';
import { dynamicJobContext, mergedEnv } from './context.js';
import { loadDynamicJob } from './load.js';

/** Most jobs one generator may return. */
export const MAX_GENERATED_JOBS = 100;

/**
 * Runs the generator and checks its result.
 * @param {{request: object, workflow: object, dynamicJob: object,
 *          output: import('./output.js').OutputRouter, log: import('./output.js').StepLog,
 *          signal: AbortSignal, groups: import('@kici-dev/shared').ProcessGroups}} scope
 * @returns {Promise<{job: object, name: string}[]>} the generated jobs in order, with their names
 */
export async function generateJobs({ request, workflow, dynamicJob, output, log, signal, groups }) {
  const env = mergedEnv(request);
  const jobs = await output.runIn(log, async () =>
    dynamicJob.generate(dynamicJobContext({ request, workflow, env, log, signal, groups })),
  );
  if (!Array.isArray(jobs) || !jobs.every((job) => job?._tag === 'Job')) {
    throw new Error('the dynamic job function must return an array of job() values');
  }
  if (jobs.length > MAX_GENERATED_JOBS) {
    throw new Error(`the dynamic job function generated ${jobs.length} jobs (max ${MAX_GENERATED_JOBS})`);
  }
  const names = nameJobs(jobs);
  const seen = new Set();
  for (const name of names) {
    if (seen.has(name)) throw new Error(`the dynamic job function generated two jobs named '${name}'`);
    seen.add(name);
  }
  return jobs.map((job, index) => ({ job, name: names[index] }));
}

/** `Dynamic job evaluation failed: <message>`; the stack on the prepare log is the thrown one's. */
function evaluationFailed(thrown) {
  const error = new Error(`Dynamic job evaluation failed: ${errorMessage(thrown)}`, { cause: thrown });
  error.stack = `Dynamic job evaluation failed: ${errorStack(thrown)}`;
  return error;
}

/**
 * For execute with `request.dynamic`: imports the module, re-runs the generator at
 * `request.dynamic.index` and finds the generated job named `request.job`.
 * @param {object} request the execute request
 * @param {{output: import('./output.js').OutputRouter, log: import('./output.js').StepLog,
 *          signal: AbortSignal, groups: import('@kici-dev/shared').ProcessGroups}} io
 * @returns {Promise<{workflow: object, job: object}>}
 */
export async function loadGeneratedJob(request, io) {
  const { workflow, dynamicJob } = await loadDynamicJob(request, request.dynamic.index);
  let generated;
  try {
    generated = await generateJobs({ request, workflow, dynamicJob, ...io });
  } catch (thrown) {
    throw evaluationFailed(thrown);
  }
  const target = generated.find(({ name }) => name === request.job);
  if (target === undefined) {
    throw new Error(
      `DynamicJobFn non-deterministic re-evaluation: job '${request.job}' no longer exists in the generator's output`,
    );
  }
  return { workflow, job: target.job };
}
