// The IPC client both ends of the runner protocol use on the runner side: JSON lines over a
// file descriptor (fd 3, a Unix stream socket the host connected). See sdk/PROTOCOL.md.
//
// It frames and parses messages and flushes pending writes on `close()`. It does not interpret
// message types (the runner does) and it does not exit the process.

import net from 'node:net';
import { LineSplitter } from './lines.js';

export class IpcClient {
  #socket;
  #listeners = new Set();
  #closeListeners = new Set();
  #closing = false;

  /** @param {number} fd the inherited socket, 3 for the runner */
  constructor(fd) {
    this.#socket = new net.Socket({ fd, readable: true, writable: true });
    const lines = new LineSplitter((line) => {
      if (line.trim() === '') return;
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        throw new Error(`invalid IPC message from the host (not JSON): ${line}`);
      }
      for (const listener of this.#listeners) listener(message);
    });
    this.#socket.on('data', (chunk) => lines.push(chunk));
    this.#socket.on('close', () => {
      if (this.#closing) return;
      for (const listener of this.#closeListeners) listener();
    });
    // A write after the host went away fails with EPIPE; the 'close' listeners handle that case.
    this.#socket.on('error', () => {});
  }

  /** Sends one message (one JSON line). */
  send(message) {
    if (this.#closing || this.#socket.destroyed) return;
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  /** Calls `listener` for every message received; returns a function that removes it. */
  onMessage(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
