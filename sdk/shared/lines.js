// LineSplitter: turns a stream of chunks (Buffers decoded as UTF-8, or strings) into complete
// lines without their newline. Used for `$` output, raw stdout/stderr writes and IPC framing.
// Lines longer than a limit (MAX_LINE_LENGTH by default) are delivered in pieces, so an
// unterminated line is never held much beyond the limit. With a masker (mask.js) every line is
// masked before it is cut, so a secret value is masked even where a cut would fall inside it.
// It does not know where lines go; the callback decides.

import { StringDecoder } from 'node:string_decoder';

/** The longest line delivered whole, in UTF-16 code units (64 KiB of ASCII); longer lines come in pieces. */
export const MAX_LINE_LENGTH = 64 * 1024;

/**
 * Cuts `line` into pieces of at most `max` code units (never inside a surrogate pair).
 * @returns {string[]} `[line]` when it is short enough
 */
export function splitLongLine(line, max = MAX_LINE_LENGTH) {
  if (line.length <= max) return [line];
  const pieces = [];
  let start = 0;
  while (line.length - start > max) {
    let end = start + max;
    const last = line.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff && max > 1) end -= 1;
    pieces.push(line.slice(start, end));
    start = end;
  }
  pieces.push(line.slice(start));
  return pieces;
}

/** Decodes UTF-8 chunks and calls `onLine` for every complete line (without its newline). */
export class LineSplitter {
  #decoder = new StringDecoder('utf8');
  #partial = '';
  #maxLineLength;
  #mask;

  /**
   * @param {(line: string) => void} onLine
   * @param {{maxLineLength?: number, mask?: import('./mask.js').Masker}} [options]
   *   `maxLineLength: Infinity` keeps every line whole (IPC framing); `mask` is applied to every
   *   line (or piece of an unterminated one) before it is cut and delivered
   */
  constructor(onLine, { maxLineLength = MAX_LINE_LENGTH, mask } = {}) {
    this.onLine = onLine;
    this.#maxLineLength = maxLineLength;
    this.#mask = mask ?? Object.assign((text) => text, { reach: 0 });
  }

  /** Feeds a chunk (Buffer or string); returns the decoded text. */
  push(chunk) {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop();
    for (const line of parts) this.#deliver(line);
    if (this.#partial.length > this.#maxLineLength) {
      // Full pieces of an over-long unterminated line go out now, masked; the (non-empty) rest
      // waits, and so do its last `reach - 1` characters: a secret value may still be arriving.
      const text = this.#mask(this.#partial);
      const ready = Math.max(text.length - Math.max(this.#mask.reach - 1, 0), 0);
      const pieces = splitLongLine(text.slice(0, ready), this.#maxLineLength);
      this.#partial = pieces.pop() + text.slice(ready);
      for (const piece of pieces) this.onLine(piece);
    }
    return text;
  }

  /** Flushes the last unterminated line, if any; returns the text still held by the decoder. */
  end() {
    const rest = this.#decoder.end();
    const line = this.#partial + rest;
    this.#partial = '';
    if (line !== '') this.#deliver(line);
    return rest;
  }

  #deliver(line) {
    for (const piece of splitLongLine(this.#mask(line), this.#maxLineLength)) this.onLine(piece);
  }
}
