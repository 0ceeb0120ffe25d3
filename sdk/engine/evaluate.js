// The `evaluate` request (kind `matrix`): import the module, find the job, call its dynamic
// matrix function with a DynamicMatrixContext in the work directory, and answer with the value
// or the error message. Output of `log` / `$` / console goes to the prepare log (step -1).
// It does not expand the matrix or enforce the 60 s limit (the host does both).

import { isMatrixValue } from '@kici-dev/sdk';
import { errorMessage } from '@kici-dev/shared';
import { enterJob, matrixContext, mergedEnv } from './context.js';
import { loadJob } from './load.js';

/**
 * @param {object} request the evaluate request
 * @param {{output: import('./output.js').OutputRouter, lifetime: AbortSignal,
 *          groups: import('@kici-dev/shared').ProcessGroups}} io
 */
export async function evaluateRequest(request, { output, lifetime, groups }) {
  const log = output.stepLog(-1);
  try {
    if (request.kind !== 'matrix') throw new Error(`unknown evaluate kind '${request.kind}' (expected 'matrix')`);
    enterJob(request);
    const value = await output.runIn(log, async () => {
      const { workflow, job } = await loadJob(request);
      if (typeof job.matrix !== 'function') throw new Error(`Job '${request.job}' has no dynamic matrix`);
      const env = mergedEnv(request, job);
      return job.matrix(matrixContext({ request, workflow, job: request.job, env, log, signal: lifetime, groups }));
    });
    if (!isMatrixValue(value)) throw new Error('the matrix function must return a string[] or a Record<string, string[]>');
    return { type: 'evaluate.result', value };
  } catch (error) {
    return { type: 'evaluate.result', error: { message: errorMessage(error) } };
  } finally {
    log.flush();
  }
}
