// Parses V8 stack traces (`Error.prototype.stack`) into frames with an absolute file path, a
// line and a column. Used for SDK call sites and for locating module load errors. Also the one
// place that turns any thrown value (Error or not) into a message or a stack text.
// With `--enable-source-maps` the frames already carry original `.ts` positions, possibly as
// `file://` URLs; both forms are accepted. Frames without a file (`node:` internals, `native`,
// `<anonymous>`) are dropped. It does not decide which frame matters; callers filter.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const POSITION = /^(.*):(\d+):(\d+)$/;

/**
 * @param {string | undefined} stack
 * @returns {{file: string, line: number, column: number}[]}
 */
export function parseStackFrames(stack) {
  if (typeof stack !== 'string') return [];
  const frames = [];
  for (const raw of stack.split('\n')) {
    const trimmed = raw.trim();
    if (!trimmed.startsWith('at ')) continue;
    let where = trimmed.slice(3);
    if (where.endsWith(')')) where = where.slice(where.lastIndexOf('(') + 1, -1);
    else if (where.startsWith('async ')) where = where.slice('async '.length);
    const match = POSITION.exec(where);
    if (!match) continue;
    const file = toPath(match[1]);
    if (file === undefined) continue;
    frames.push({ file, line: Number(match[2]), column: Number(match[3]) });
  }
  return frames;
}

function toPath(location) {
  if (location.startsWith('file://')) return fileURLToPath(location);
  return path.isAbsolute(location) ? location : undefined;
}

const RUNTIME_FRAME = /node_modules\/@kici-dev\/|\(node:|at node:|<anonymous>\)$/;

/**
 * A stack trace for the step log: the message and the author's frames, without the frames of
 * the KiCI runtime and Node internals that every step shares.
 * @param {string} stack
 * @returns {string}
 */
export function userStack(stack) {
  return stack
    .split('\n')
    .filter((line) => !(line.trimStart().startsWith('at ') && RUNTIME_FRAME.test(line)))
    .join('\n');
}

/** The message of a thrown value: `message` for an Error, `String(value)` for anything else. */
export function errorMessage(thrown) {
  return thrown instanceof Error ? thrown.message : String(thrown);
}

/** The stack of a thrown value (its message when it has none); `String(value)` for a non-Error. */
export function errorStack(thrown) {
  return thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown);
}
