// The IPC client of the runner side of the protocol: JSON lines over a file descriptor (fd 3, a
// Unix stream socket the host connected). See sdk/PROTOCOL.md.
//
// It frames and parses messages (a line that is not a JSON object goes to the invalid-line
// listeners instead), reports congestion when the host reads slower than we write (more than
// HIGH_WATER_CHARS unsent) and flushes pending writes on `close()`. It does not interpret
// message types (the runner does), does not throttle anyone itself (`$` pauses its output on
// `congested`) and does not exit the process.

import net from 'node:net';
import { LineSplitter } from './lines.js';

/**
 * Unsent output (characters of JSON text; bytes for ASCII) above which the channel counts as
 * congested. Writers that can wait (`$` output) pause until `drained()`; the rest still queue.
 */
const HIGH_WATER_CHARS = 1024 * 1024;

export class IpcClient {
  #socket;
  #listeners = new Set();
  #closeListeners = new Set();
  #invalidListeners = new Set();
  #closing = false;
  /** Resolves at the next 'drain' (or close) while congested; null otherwise. */
  #drained = null;

  /** @param {number} fd the inherited socket, 3 for the runner */
  constructor(fd) {
    this.#socket = new net.Socket({ fd, readable: true, writable: true });
    // Requests carry whole event payloads: a host line is never cut into pieces.
    const lines = new LineSplitter((line) => this.#receive(line), { maxLineLength: Infinity });
    this.#socket.on('data', (chunk) => lines.push(chunk));
    this.#socket.on('close', () => {
      if (this.#closing) return;
      for (const listener of this.#closeListeners) listener();
    });
    // A write after the host went away fails with EPIPE; the 'close' listeners handle that case.
    this.#socket.on('error', () => {});
  }

  #receive(line) {
    if (line.trim() === '') return;
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = undefined;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      for (const listener of this.#invalidListeners) listener(line);
      return;
    }
    for (const listener of this.#listeners) listener(message);
  }

  /** Sends one message (one JSON line). Never blocks: check `congested` to hold back output. */
  send(message) {
    if (this.#closing || this.#socket.destroyed) return;
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  /** True while more than HIGH_WATER_CHARS of sent messages wait for the host to read them. */
  get congested() {
    return !this.#socket.destroyed && this.#socket.writableLength > HIGH_WATER_CHARS;
  }

  /** Resolves once everything queued is handed to the kernel (at once when not congested), or the channel closed. */
  drained() {
    if (!this.congested || this.#socket.destroyed) return Promise.resolve();
    this.#drained ??= new Promise((resolve) => {
      const done = () => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        this.#drained = null;
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return this.#drained;
  }

  /** Calls `listener` for every message received; returns a function that removes it. */
  onMessage(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` with every received line that is not a JSON object (the line is otherwise ignored). */
  onInvalidLine(listener) {
    this.#invalidListeners.add(listener);
  }

  /** Calls `listener` when the host closes the channel before `close()` was called. */
  onHostClosed(listener) {
    this.#closeListeners.add(listener);
  }

  /** Flushes every pending write and closes our side; resolves when the data is handed to the kernel. */
  close() {
    this.#closing = true;
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.end(resolve);
    });
  }
}
