// `.result` of Steps, bare step functions and Jobs. The SDK keeps no results: each getter asks
// the source the runner bound for the job it runs (engine/outputs.js), so it reads the value
// current when it is accessed, i.e. inside a later step. The source lives on globalThis so a
// workflow that ends up with its own copy of the SDK still reads the runner's.

const SOURCE = Symbol.for('kici-dev.results');

/**
 * Binds what `.result` reads while a job runs (one job per runner process).
 * @param {{stepResult: (ref: object | Function) => unknown, jobResult: (ref: object) => unknown}} source
 */
export function bindResults(source) {
  globalThis[SOURCE] = source;
}

function boundSource(what) {
  const source = globalThis[SOURCE];
  if (source === undefined) {
    throw new Error(`${what}.result can only be read while a job runs; read it inside a step`);
  }
  return source;
}

/** Non-enumerable, so a Step or Job compares and prints as the data it is. */
function defineResult(target, read) {
  Object.defineProperty(target, 'result', { get: read, enumerable: false, configurable: true });
}

/** `step.result` (or `fn.result` for a bare function used as a step): that step's returned value. */
export function defineStepResult(ref, label) {
  defineResult(ref, () => boundSource(`Step '${label}'`).stepResult(ref));
}

/** `job.result`: the upstream job's outputs from this job's `needs`. */
export function defineJobResult(ref, label) {
  defineResult(ref, () => boundSource(`Job '${label}'`).jobResult(ref));
}

/**
 * True when an entry of `ctx.needs` is the ordered array a fanned-out upstream (a matrix, a
 * dynamic group) gives — `{name, status, result?}` per job — rather than one `{status, result?}`.
 */
export function isMatrixJobOutputs(value) {
  return (
    Array.isArray(value) &&
    value.every((entry) => typeof entry?.name === 'string' && typeof entry?.status === 'string')
  );
}
