// Requests the runner makes of the host during `execute` and their answers, matched by
// `requestId`: one HostRequests per kind (`cache.request` / `cache.response` for cache.js,
// `event.emit` / `event.emit.response` for events.js), built once in runner.js. What a request
// holds and what its answer means is the caller's.

const SHUTTING_DOWN = 'the runner is shutting down';

/** Requests of one kind and their answers. */
export class HostRequests {
  #send;
  #lifetime;
  #type;
  #prefix;
  #pending = new Map();
  #count = 0;

  /**
   * @param {{send: (message: object) => void, onMessage: (listener: (message: object) => void) => void,
   *          lifetime: AbortSignal}} channel `lifetime` fires when the runner shuts down: pending
   *   requests then reject, so nothing waits for a host that is gone
   * @param {{type: string, answerType: string, prefix: string}} kind the request's `type`, its
   *   answer's, and how request ids start (`<prefix>-<n>`, n counting from 1)
   */
  constructor({ send, onMessage, lifetime }, { type, answerType, prefix }) {
    this.#send = send;
    this.#lifetime = lifetime;
    this.#type = type;
    this.#prefix = prefix;
    onMessage((message) => {
      if (message.type !== answerType) return;
      const pending = this.#pending.get(message.requestId);
      this.#pending.delete(message.requestId);
      pending?.resolve(message);
    });
    lifetime.addEventListener(
      'abort',
      () => {
        for (const { reject } of this.#pending.values()) reject(new Error(SHUTTING_DOWN));
        this.#pending.clear();
      },
      { once: true },
    );
  }

  /** Sends `{type, requestId, ...fields}` and resolves with the host's answer message. */
  request(fields) {
    if (this.#lifetime.aborted) return Promise.reject(new Error(SHUTTING_DOWN));
    this.#count += 1;
    const requestId = `${this.#prefix}-${this.#count}`;
    return new Promise((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      this.#send({ type: this.#type, requestId, ...fields });
    });
  }
}
