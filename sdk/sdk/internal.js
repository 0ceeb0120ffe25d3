// @kici-dev/sdk/internal: runner plumbing, not authoring API. @kici-dev/engine imports these so
// describe, evaluate and execute name steps and jobs, read matrices, judge rules, bind `.result`
// and check cache specs and event names exactly as the SDK does. Authors import from
// `@kici-dev/sdk` (index.js); nothing here is promised to them. This file only re-exports; see
// the modules it names.

export { isMatrixValue } from './job.js';
export { normalizeCacheSpecs } from './cache.js';
export { firstBlockingRule } from './rules.js';
export { flattenSteps, jobNames, nameJobs } from './naming.js';
export { bindResults } from './outputs.js';
export { didYouMean } from './common.js';
export { eventNameProblem, isEventDefinition } from './event-triggers.js';
