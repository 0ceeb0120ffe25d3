// @kici-dev/shared: what steps and the runner use at run time. This file only re-exports;
// each piece lives in its own module (shell.js, process-groups.js, lines.js, logger.js, ipc.js,
// stack.js, mask.js).

export { createShell, quote, buildCommand, ProcessOutput, ProcessPromise } from './shell.js';
export { ProcessGroups } from './process-groups.js';
export { LineSplitter, splitLongLine } from './lines.js';
export { createLogger } from './logger.js';
export { IpcClient } from './ipc.js';
export { createMasker, MIN_MASKED_LENGTH } from './mask.js';
export { parseStackFrames, userStack, errorMessage, errorStack } from './stack.js';
