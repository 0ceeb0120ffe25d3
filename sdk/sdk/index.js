// @kici-dev/sdk: the workflow authoring API. Pure data constructors plus validation; importing
// it does no I/O. This file only re-exports; see the modules it names.
// `flattenSteps`, `jobNames`, `nameJobs`, `isMatrixValue`, `firstBlockingRule` and `bindResults`
// are runner plumbing (shared with @kici-dev/engine so describe, evaluate and execute agree with
// the SDK), not authoring API.

export { KiciError } from './common.js';
export { SecretNotFoundError } from './secrets.js';
export { workflow } from './workflow.js';
export { job, isMatrixValue } from './job.js';
export { dynamicJob } from './dynamic-job.js';
export { step, parallel } from './steps.js';
export { normalizeCacheSpecs } from './cache.js';
export { push, pr, tag, dispatch, isEventType } from './triggers.js';
export {
  rule,
  skip,
  evaluateRules,
  firstBlockingRule,
  onSuccess,
  onFailure,
  cleanup,
  onCancel,
  beforeStep,
  afterStep,
} from './rules.js';
export { waitFor, waitForStep, WaitForTimeoutError } from './wait.js';
export { validateDag } from './dag.js';
export { expandMatrix, applyIncludeExclude, isStaticArray, isStaticObject, isDynamicFunction } from './matrix.js';
export { z } from './vendor/zod/index.js';
export { flattenSteps, jobNames, nameJobs } from './naming.js';
export { bindResults } from './outputs.js';
