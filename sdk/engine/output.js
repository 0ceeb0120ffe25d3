// Where output goes while the runner works: one StepLog per step index (-1 = prepare log) that
// turns text into `log.line` messages (a line longer than 64 Ki code units becomes several), and
// an OutputRouter that attributes `process.stdout.write` / `process.stderr.write` (and so
// `console.*`) to the StepLog of the async context it runs in (AsyncLocalStorage). Writes
// outside any context reach the real stdout/stderr (masked, see below). A StepLog is also the
// flow control of the `$` commands writing to it (it relays the IPC channel's congestion).
//
// The router is also where secret values are masked (`maskSecrets`), since every text the runner
// sends leaves through it: log lines are masked by their StepLog before they are cut (the
// LineSplitters of raw writes and of `$` output get the same masker for that reason), the error
// texts of other messages by `send`, and raw writes outside any step by `install`.
// It does not decide which step is running; callers enter contexts.

import { AsyncLocalStorage } from 'node:async_hooks';
import { LineSplitter, createMasker, splitLongLine } from '@kici-dev/shared';

/** Text of one step (or of the prepare phase), sent as `log.line` messages, one per line. */
export class StepLog {
  #send;
  #raw;
  #flow;

  /**
   * @param {(message: object) => void} send
   * @param {number} stepIndex
   * @param {import('@kici-dev/shared').FlowControl} flow the channel `send` writes to
   * @param {import('@kici-dev/shared').Masker} mask applied to every line before it is cut
   */
  constructor(send, stepIndex, flow, mask) {
    this.#send = send;
    this.stepIndex = stepIndex;
    this.#flow = flow;
    this.mask = mask;
    this.#raw = {
      stdout: new LineSplitter((line) => this.#sendLine('stdout', line), { mask }),
      stderr: new LineSplitter((line) => this.#sendLine('stderr', line), { mask }),
    };
  }

  /**
   * Sends one line (no newline inside), masked, then cut if over-long. `level` only for stream `log`.
   * @param {'stdout' | 'stderr' | 'log'} stream
   * @param {string} line
   * @param {'info' | 'warn' | 'error' | 'debug'} [level]
   */
  line(stream, line, level) {
    for (const piece of splitLongLine(this.mask(line))) this.#sendLine(stream, piece, level);
  }

  /** Sends a line that is already masked and short enough. */
  #sendLine(stream, line, level) {
    const message = { type: 'log.line', stepIndex: this.stepIndex, stream, line };
    if (level !== undefined) message.level = level;
    this.#send(message);
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
  /** One masker for the runner's lifetime: secrets added later reach every holder. */
  #mask = createMasker([]);

  /**
   * @param {(message: object) => void} send
   * @param {import('@kici-dev/shared').FlowControl} flow congestion of the channel `send` writes to
   */
  constructor(send, flow) {
    this.#send = send;
    this.#flow = flow;
  }

  /**
   * Masks these secret values in every text sent from now on, also by the StepLogs and shells
   * already made (they share the router's masker).
   * @param {Iterable<string>} values
   */
  maskSecrets(values) {
    this.#mask.add(values);
  }

  /** The masker in force (for the `$` output of a step, say). */
  get mask() {
    return this.#mask;
  }

  /** Sends a message that is not a log line, its error text (`error` or `error.message`) masked. */
  send(message) {
    const { error } = message;
    if (typeof error === 'string') {
      this.#send({ ...message, error: this.#mask(error) });
    } else if (typeof error?.message === 'string') {
      this.#send({ ...message, error: { ...error, message: this.#mask(error.message) } });
    } else {
      this.#send(message);
    }
  }

  /** A fresh log for a step index. */
  stepLog(stepIndex) {
    return new StepLog(this.#send, stepIndex, this.#flow, this.#mask);
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
      const router = this;
      target.write = function write(chunk, encoding, callback) {
        const log = storage.getStore();
        if (log === undefined) return original.call(this, router.#maskRaw(chunk, encoding), encoding, callback);
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

  /**
   * A write outside any step, masked (the host attributes the runner's own stdout/stderr to a
   * step). Chunk by chunk: a value cut between two writes is not found.
   */
  #maskRaw(chunk, encoding) {
    if (this.#mask.reach === 0) return chunk;
    const text =
      typeof chunk === 'string'
        ? Buffer.from(chunk, Buffer.isEncoding(encoding) ? encoding : 'utf8').toString()
        : Buffer.from(chunk).toString();
    const masked = this.#mask(text);
    return masked === text ? chunk : Buffer.from(masked);
  }
}
