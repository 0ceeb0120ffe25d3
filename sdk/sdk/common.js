// What every SDK constructor needs: KiciError (what validation throws), call-site capture for
// `workflow(`, `job(`, `step(` and `parallel(` calls, and list normalisation.
// A call site is the first stack frame outside the SDK: frames in this package's directory and
// under `node_modules/@kici-dev/` are skipped. Locations are absolute here; the runner makes
// them repository-relative. This module validates nothing itself.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStackFrames } from '@kici-dev/shared';

const PACKAGE_DIR = path.dirname(fileURLToPath(import.meta.url)) + path.sep;
const KICI_PACKAGES = `${path.sep}node_modules${path.sep}@kici-dev${path.sep}`;

/** A workflow definition error, raised while the module is imported. */
export class KiciError extends Error {
  /**
   * @param {string} message
   * @param {{location?: {file: string, line: number, column: number}, suggestion?: string}} [details]
   */
  constructor(message, { location, suggestion } = {}) {
    super(message);
    this.name = 'KiciError';
    this.location = location;
    this.suggestion = suggestion;
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
