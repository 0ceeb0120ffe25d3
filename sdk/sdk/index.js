// @kici-dev/sdk: the workflow authoring API. Pure data constructors plus validation; importing
// it does no I/O. This file only re-exports; see the modules it names.
// Only what authors use is here (sdk/tests/exports.test.js lists it); the runner plumbing
// @kici-dev/engine shares with the SDK is `@kici-dev/sdk/internal` (internal.js).

export { KiciError } from './common.js';
export { SecretNotFoundError } from './secrets.js';
export { workflow } from './workflow.js';
export { job } from './job.js';
export { dynamicJob, dynamicGroup } from './dynamic-job.js';
export { step, parallel } from './steps.js';
export { push, pr, tag, dispatch, schedule, isEventType } from './triggers.js';
export { kiciEvent, defineEvent, workflowComplete, jobComplete, genericWebhook } from './event-triggers.js';
export { defineDispatchInputs } from './dispatch-inputs.js';
export {
  rule,
  skip,
  evaluateRules,
  onSuccess,
  onFailure,
  cleanup,
  onCancel,
  beforeStep,
  afterStep,
} from './rules.js';
export { waitFor, waitForStep, WaitForTimeoutError } from './wait.js';
export { isMatrixJobOutputs } from './outputs.js';
export { normalizeApproval } from './approval.js';
export { validateDag } from './dag.js';
export { expandMatrix, applyIncludeExclude, isStaticArray, isStaticObject, isDynamicFunction } from './matrix.js';
export { z } from './vendor/zod/index.js';
