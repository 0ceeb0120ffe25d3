// Where output goes while the runner works: one StepLog per step index (-1 = prepare log) that
// turns text into `log.line` messages (a line longer than 64 Ki code units becomes several), and
// an OutputRouter that attributes `process.stdout.write` / `process.stderr.write` (and so
// `console.*`) to the StepLog of the async context it runs in (AsyncLocalStorage). Writes
// outside any context reach the real stdout/stderr untouched. A StepLog is also the flow control
// of the `$` commands writing to it (it relays the IPC channel's congestion). It does not decide
// which step is running; callers enter contexts.

import { AsyncLocalStorage } from 'node:async_hooks';
import { LineSplitter, splitLongLine } from '@kici-dev/shared';

/** Text of one step (or of the prepare phase), sent as `log.line` messages, one per line. */
export class StepLog {
  #send;
  #raw;
  #flow;

  /**
   * @param {(message: object) => void} send
   * @param {number} stepIndex
   * @param {import('@kici-dev/shared').FlowControl} flow the channel `send` writes to
   */
  constructor(send, stepIndex, flow) {
    this.#send = send;
    this.stepIndex = stepIndex;
    this.#flow = flow;
    this.#raw = {
      stdout: new LineSplitter((line) => this.line('stdout', line)),
      stderr: new LineSplitter((line) => this.line('stderr', line)),
    };
  }

  /**
   * Sends one line (no newline inside). `level` only for stream `log`.
   * @param {'stdout' | 'stderr' | 'log'} stream
   * @param {string} line
   * @param {'info' | 'warn' | 'error' | 'debug'} [level]
   */
  line(stream, line, level) {
    for (const piece of splitLongLine(line)) {
      const message = { type: 'log.line', stepIndex: this.stepIndex, stream, line: piece };
      if (level !== undefined) message.level = level;
      this.#send(message);
    }
  }

  /** True while the host reads slower than lines are sent. */
  get congested() {
    return this.#flow.congested;
  }

  /** Resolves once the host caught up. */
  drained() {
    return this.#flow.drained();
  }

  /** Sends a multi-line text (a stack trace, say) as `log` lines of one level. */
  text(level, text) {
    for (const line of text.split('\n')) this.line('log', line, level);
  }

  /** Raw stream data: complete lines are sent now, a trailing partial line on `flush()`. */
  write(stream, chunk) {
    this.#raw[stream].push(chunk);
  }

  flush() {
    this.#raw.stdout.end();
    this.#raw.stderr.end();
  }
}

export class OutputRouter {
  #storage = new AsyncLocalStorage();
  #send;
  #flow;

  /**
   * @param {(message: object) => void} send
   * @param {import('@kici-dev/shared').FlowControl} flow congestion of the channel `send` writes to
   */
  constructor(send, flow) {
    this.#send = send;
    this.#flow = flow;
  }

  /** A fresh log for a step index. */
  stepLog(stepIndex) {
    return new StepLog(this.#send, stepIndex, this.#flow);
  }

  /** Runs `fn` so that stdout/stderr writes made in its async context go to `log`. */
  runIn(log, fn) {
    return this.#storage.run(log, fn);
  }

  /** Redirects process.stdout/stderr writes made inside a `runIn` context. Call once. */
  install() {
    for (const stream of /** @type {const} */ (['stdout', 'stderr'])) {
      const target = process[stream];
      const original = target.write;
      const storage = this.#storage;
      target.write = function write(chunk, encoding, callback) {
        const log = storage.getStore();
        if (log === undefined) return original.call(this, chunk, encoding, callback);
        const done = typeof encoding === 'function' ? encoding : callback;
        const data =
          typeof chunk === 'string' && typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8'
            ? Buffer.from(chunk, encoding)
            : chunk;
        log.write(stream, typeof data === 'string' ? data : Buffer.from(data));
        if (done) process.nextTick(done);
        return true;
      };
    }
  }
}
