// What every SDK constructor needs: KiciError (what validation throws), call-site capture for
// `workflow(`, `job(`, `step(` and `parallel(` calls, list normalisation, the check for
// whole-number options (timeouts, grace periods, retry delays), how a wrong value is quoted and
// the "did you mean" hint for a misspelt option name.
// A call site is the first stack frame outside the SDK: frames in this package's directory and
// under `node_modules/@kici-dev/` are skipped. Locations are absolute here; the runner makes
// them repository-relative. Constructors decide what to validate; this module only has the
// shared pieces.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStackFrames } from '@kici-dev/shared';

const PACKAGE_DIR = path.dirname(fileURLToPath(import.meta.url)) + path.sep;
const KICI_PACKAGES = `${path.sep}node_modules${path.sep}@kici-dev${path.sep}`;

/** A workflow definition error, raised while the module is imported. */
export class KiciError extends Error {
  /**
   * @param {string} message
   * @param {{location?: {file: string, line: number, column: number}, suggestion?: string, code?: string}} [details]
   *   `code` is the compiler's error code (`E109`) when the problem has one.
   */
  constructor(message, { location, suggestion, code } = {}) {
    super(message);
    this.name = 'KiciError';
    this.location = location;
    this.suggestion = suggestion;
    this.code = code;
  }
}

/** The file, line and column of the author's code that called into the SDK, if found. */
export function callSite() {
  for (const frame of parseStackFrames(new Error().stack)) {
    if (frame.file.startsWith(PACKAGE_DIR) || frame.file.includes(KICI_PACKAGES)) continue;
    return frame;
  }
  return undefined;
}

/** Name used in error texts for a job or step the author did not name. */
export const UNNAMED = '(unnamed)';

/** Wraps a single value into an array; `undefined` becomes `[]`. */
export function toList(value) {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * Throws `fail(<field> must be a positive integer (<unit>), example)` (or `a non-negative
 * integer` when `min` is 0) unless `value` is undefined or a safe integer >= `min`.
 * @param {{field: string, min: 0 | 1, unit: string, example: string}} spec
 * @param {(message: string, suggestion: string) => KiciError} fail builds the caller's error
 */
export function checkWholeNumber(value, { field, min, unit, example }, fail) {
  if (value === undefined || (Number.isSafeInteger(value) && value >= min)) return;
  throw fail(`${field} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer (${unit})`, example);
}

/** A wrong value as error texts show it: strings quoted, numbers and booleans as written, else its type. */
export function describeValue(value) {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return typeof value;
}

/** True for a plain object (not null, not an array). */
export const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function editDistance(a, b) {
  const rows = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i += 1) {
    rows[i] = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const replace = rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, replace);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
      }
    }
  }
  return rows[a.length][b.length];
}

/**
 * `did you mean '<name>'? ` for an option name close to one of `names` (case ignored, at most a
 * third of its letters wrong), else the empty string; meant to start a suggestion.
 */
export function didYouMean(word, names) {
  const distance = (name) => editDistance(word.toLowerCase(), name.toLowerCase());
  const closest = [...names].sort((a, b) => distance(a) - distance(b))[0];
  if (closest === undefined || distance(closest) > Math.max(1, Math.floor(closest.length / 3))) return '';
  return `did you mean '${closest}'? `;
}

/** The `needs` name of a dynamic group (`dynamicGroup(name)`): `__group:<name>`. */
export const GROUP_NEED_PREFIX = '__group:';
