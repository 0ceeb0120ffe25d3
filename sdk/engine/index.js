// @kici-dev/engine as a library: the request handlers runner.js dispatches to, for tools that
// want to run them in-process with their own IPC. Importing it starts nothing; only runner.js
// opens fd 3.

export { describeFiles } from './describe.js';
export { evaluateRequest } from './evaluate.js';
export { executeJob } from './execute.js';
export { OutputRouter } from './output.js';
