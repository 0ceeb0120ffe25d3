// @kici-dev/sdk: the workflow authoring API. Pure data constructors plus validation; importing
// it does no I/O. This file only re-exports; see the modules it names.
// `flattenSteps`, `jobNames`, `nameJobs`, `isMatrixValue` and `bindResults` are runner plumbing (shared with
// @kici-dev/engine so describe, evaluate and execute agree with the SDK), not authoring API.

export { KiciError } from './common.js';
export { SecretNotFoundError } from './secrets.js';
export { workflow } from './workflow.js';
export { job, isMatrixValue } from './job.js';
export { dynamicJob } from './dynamic-job.js';
export { step, parallel } from './steps.js';
export { normalizeCacheSpecs } from './cache.js';
export { push, pr, tag, dispatch } from './triggers.js';
export { rule, skip, onSuccess, onFailure, cleanup, onCancel } from './rules.js';
export { flattenSteps, jobNames, nameJobs } from './naming.js';
export { bindResults } from './outputs.js';
