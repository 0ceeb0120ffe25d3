// Custom events over IPC: `ctx.emit(nameOrDefinition, payload?)` checks the event (its name as
// the SDK's defineEvent does, its payload a plain JSON object within EVENT_PAYLOAD_LIMIT_BYTES,
// against the definition's schema when given one), sends `event.emit` and waits for the host's
// `event.emit.response`; the host queues the event for the orchestrator, which starts the
// workflows whose kiciEvent trigger matches. `client` is the runner's HostRequests of
// `event.emit` (host-requests.js); `ctx.emit` is built here for context.js.

import { eventNameProblem, isEventDefinition } from '@kici-dev/sdk/internal';
import { jsonText, parseWithSchema } from './outputs.js';

/** Most bytes (UTF-8 JSON) one event's payload may take. */
const EVENT_PAYLOAD_LIMIT_BYTES = 65536;

const EXAMPLE = "e.g. ctx.emit('deploy.finished', { environment: 'production' })";

const fail = (message) => new TypeError(`emit: ${message}`);

/** True for `{...}` itself: not an array, a class instance or a primitive. */
function isPlainObject(value) {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** How a payload that is not a plain object is named in the error. */
function describePayload(value) {
  if (Array.isArray(value)) return 'an array';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}

/**
 * The event as it is sent, `{name, payload}`, or throws a TypeError saying what is wrong. With a
 * definition the payload is what its schema parsed.
 */
function checkedEvent(nameOrDefinition, payload = {}) {
  const definition = isEventDefinition(nameOrDefinition) ? nameOrDefinition : undefined;
  const name = definition?.name ?? nameOrDefinition;
  const problem = eventNameProblem(name);
  if (problem !== undefined) throw fail(`the event name ${problem}; ${EXAMPLE}`);
  let value = payload;
  if (definition !== undefined) {
    const { issues, thrown, value: parsed } = parseWithSchema(definition.schema, payload, 'payload');
    if (thrown !== undefined) {
      throw fail(`the payload of event '${name}' could not be checked against its schema: ${thrown}`);
    }
    if (issues !== undefined) throw fail(`the payload of event '${name}' does not match its schema: ${issues}`);
    value = parsed;
  }
  if (!isPlainObject(value)) {
    throw fail(`the payload of event '${name}' must be a plain object, got ${describePayload(value)}; ${EXAMPLE}`);
  }
  const { text, reason } = jsonText(value, 'payload');
  if (reason !== undefined) throw fail(`the payload of event '${name}' is not JSON: ${reason}`);
  const bytes = Buffer.byteLength(text);
  if (bytes > EVENT_PAYLOAD_LIMIT_BYTES) {
    throw fail(
      `the payload of event '${name}' is ${bytes} bytes as JSON; the limit is ${EVENT_PAYLOAD_LIMIT_BYTES} ` +
        '(send less, such as an id the workflows it starts can look the rest up by)',
    );
  }
  return { name, payload: value };
}

/** `value` with `mask` applied to every string in it, object keys included. */
function maskStrings(value, mask) {
  if (typeof value === 'string') return mask(value);
  if (Array.isArray(value)) return value.map((item) => maskStrings(item, mask));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [mask(key), maskStrings(item, mask)]));
  }
  return value;
}

/**
 * `ctx.emit` of a step or hook row: resolves once the host accepted the event (logged on the
 * row's `log`), rejects with a TypeError for an invalid event (nothing sent), with the host's
 * error text, or when the runner shuts down.
 * @returns {(nameOrDefinition: string | {name: string, schema: object}, payload?: object) => Promise<void>}
 */
export function emitApi(client, log) {
  return async (nameOrDefinition, payload) => {
    const event = checkedEvent(nameOrDefinition, payload);
    // Secret values (the job's secrets and the secret outputs set so far) never leave in an event.
    const answer = await client.request({ name: event.name, payload: maskStrings(event.payload, log.mask) });
    if (typeof answer.error === 'string') throw new Error(answer.error);
    log.line('log', `Emitted event '${event.name}'`, 'info');
  };
}
