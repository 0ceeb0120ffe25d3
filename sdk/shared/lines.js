// LineSplitter: turns a stream of chunks (Buffers decoded as UTF-8, or strings) into complete
// lines without their newline. Used for `$` output, raw stdout/stderr writes and IPC framing.
// It does not know where lines go; the callback decides.

import { StringDecoder } from 'node:string_decoder';

/** Decodes UTF-8 chunks and calls `onLine` for every complete line (without its newline). */
export class LineSplitter {
  #decoder = new StringDecoder('utf8');
  #partial = '';

  /** @param {(line: string) => void} onLine */
  constructor(onLine) {
    this.onLine = onLine;
  }

  /** Feeds a chunk (Buffer or string); returns the decoded text. */
  push(chunk) {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop();
    for (const line of parts) this.onLine(line);
    return text;
  }

  /** Flushes the last unterminated line, if any; returns the text still held by the decoder. */
  end() {
    const rest = this.#decoder.end();
    const line = this.#partial + rest;
    this.#partial = '';
    if (line !== '') this.onLine(line);
    return rest;
  }
}
