// The `evaluate` request. Kind `matrix`: import the module, find the job, call its dynamic
// matrix function with a DynamicMatrixContext and answer with the value. Kind `jobs`: import the
// module, call the dynamicJob() generator at `index` of the workflow's jobs with a
// DynamicJobContext and answer with the generated jobs described as describe describes static
// ones. Kind `init`: import the module, find the job and answer with its environment names and
// function env, evaluated as execute evaluates them (resolve.js) for the orchestrator, which
// cannot run impure functions itself. All run in the work directory; output of `log` / `$` /
// console goes to the prepare log (step -1); any failure is answered with its message.
// It does not expand the matrix or register generated jobs, and bounds the time of env and
// environment functions only (the host bounds the rest).

import { isMatrixValue, jobNames } from '@kici-dev/sdk/internal';
import { errorMessage } from '@kici-dev/shared';
import { enterJob, matrixContext, mergedEnv } from './context.js';
import { describeJob } from './describe.js';
import { generateJobs } from './dynamic.js';
import { loadDynamicJob, loadJob, locator } from './load.js';
import { evaluateEnvironments, evaluateJobEnv, resolveJobEnv } from './resolve.js';

/** @typedef {{output: import('./output.js').OutputRouter, log: import('./output.js').StepLog,
 *             signal: AbortSignal, groups: import('@kici-dev/shared').ProcessGroups}} EvaluateScope */

/** @param {EvaluateScope} scope */
async function evaluateMatrix(request, { output, log, signal, groups }) {
  const value = await output.runIn(log, async () => {
    const { workflow, job } = await loadJob(request);
    if (typeof job.matrix !== 'function') throw new Error(`Job '${request.job}' has no dynamic matrix`);
    const env = mergedEnv(request, await resolveJobEnv(request, job));
    return job.matrix(matrixContext({ request, workflow, job: request.job, env, log, signal, groups }));
  });
  if (!isMatrixValue(value)) throw new Error('the matrix function must return a string[] or a Record<string, string[]>');
  return value;
}

/**
 * The generated jobs as JobDescriptions; `needs` naming a job object resolve to the generated
 * names first, then to the workflow's static job names.
 * @param {EvaluateScope} scope
 */
async function evaluateJobs(request, { output, log, signal, groups }) {
  const { workflow, dynamicJob } = await output.runIn(log, () => loadDynamicJob(request, request.index));
  const generated = await generateJobs({ request, workflow, dynamicJob, output, log, signal, groups });
  const names = new Map([...jobNames(workflow), ...generated.map(({ job, name }) => [job, name])]);
  const locate = locator({ root: request.root, module: request.module, file: request.file });
  return generated.map(({ job, name }) => describeJob(job, name, names, locate));
}

/**
 * `{environments?, env?}`: every environment name when the job has any (names as written,
 * functions' results), the env when it is a function. The request's `jobEnv` and
 * `environments`, if sent, are not looked at: computing them is the point.
 * @param {EvaluateScope} scope
 */
async function evaluateInit(request, { output, log }) {
  return output.runIn(log, async () => {
    const { job } = await loadJob(request);
    const envFunction = typeof job.env === 'function';
    if (!envFunction && !job.environments.some((environment) => typeof environment === 'function')) {
      throw new Error(`Job '${request.job}' computes nothing at init (no environment or env function)`);
    }
    const value = {};
    if (job.environments.length > 0) value.environments = await evaluateEnvironments(request, job);
    if (envFunction) value.env = await evaluateJobEnv(request, job);
    return value;
  });
}

const EVALUATORS = { matrix: evaluateMatrix, jobs: evaluateJobs, init: evaluateInit };

/**
 * @param {object} request the evaluate request
 * @param {{output: import('./output.js').OutputRouter, lifetime: AbortSignal,
 *          groups: import('@kici-dev/shared').ProcessGroups}} io
 */
export async function evaluateRequest(request, { output, lifetime, groups }) {
  const log = output.stepLog(-1);
  try {
    if (!Object.hasOwn(EVALUATORS, request.kind)) {
      throw new Error(`unknown evaluate kind '${request.kind}' (expected 'matrix', 'jobs' or 'init')`);
    }
    enterJob(request);
    const value = await EVALUATORS[request.kind](request, { output, log, signal: lifetime, groups });
    return { type: 'evaluate.result', value };
  } catch (error) {
    return { type: 'evaluate.result', error: { message: errorMessage(error) } };
  } finally {
    log.flush();
  }
}
