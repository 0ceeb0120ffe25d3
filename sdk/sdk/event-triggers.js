// The event triggers, fired by events that do not come from a push or pull request:
// `kiciEvent` (a custom event a KiCI step emitted), `workflowComplete` and `jobComplete` (a run
// or a job ended) and `genericWebhook` (a webhook another service sent). Each checks its
// options as the other factories do (triggers.js) and returns `{_tag: 'Trigger'}` with the lock
// file's field names, lists normalised and empty ones left out. `match` / `not` filters map a
// JSONPath to the value expected there; a RegExp becomes the string `/source/flags`.
// Also `defineEvent`, a custom event's name and payload schema, which `kiciEvent` and the
// runner's `ctx.emit` take, and the event-name rule both share (`eventNameProblem`).
// Registering them (from the default branch's lock file) and matching events is the
// orchestrator's job; a webhook's secret is named here, never held.

import { KiciError, callSite, describeValue, didYouMean, isObject, toList } from './common.js';
import { isZodSchema } from './output-schema.js';
import { nameList, oneOf, triggerOptions } from './triggers.js';

const WORKFLOW_STATUSES = ['success', 'failed', 'cancelled'];
const JOB_STATUSES = ['success', 'failed', 'skipped', 'cancelled'];
const EVENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EVENT_NAME_RULE = "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit";
const DEFINE_EVENT_EXAMPLE = "e.g. defineEvent('deploy.finished', z.object({ environment: z.string() }))";
const KICI_EVENT_EXAMPLE = "e.g. kiciEvent({ name: 'deploy.finished', match: { '$.environment': 'production' } })";
const WORKFLOW_COMPLETE_EXAMPLE = "e.g. workflowComplete({ name: 'build', status: 'success' })";
const JOB_COMPLETE_EXAMPLE = "e.g. jobComplete({ workflow: 'ci', job: 'test', status: ['failed', 'cancelled'] })";
const WEBHOOK_EXAMPLE = "e.g. genericWebhook({ source: 'stripe', events: 'charge.succeeded' })";
const AUTH_KEYS = { 'hmac-sha256': ['method', 'secret', 'signatureHeader'], 'api-key': ['method', 'secret', 'header'] };
const AUTH_EXAMPLES = {
  'hmac-sha256': "e.g. auth: { method: 'hmac-sha256', secret: 'WEBHOOK_SECRET', signatureHeader: 'x-signature' }",
  'api-key': "e.g. auth: { method: 'api-key', secret: 'WEBHOOK_TOKEN', header: 'x-api-key' }",
};
/** The header an api-key webhook's key comes in when `header` is not given. */
const DEFAULT_API_KEY_HEADER = 'authorization';
const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** An HTTP field name (a `token` of RFC 9110). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const nonEmpty = (list) => (list.length > 0 ? list : undefined);
const isScalar = (value) =>
  typeof value === 'string' || typeof value === 'boolean' || value === null || Number.isFinite(value);

/** A required name option (`name`, `source`): a string that is not blank. */
function requiredName(field, value, fail, example, missing) {
  if (value === undefined) throw fail(missing, example);
  if (typeof value !== 'string' || value.trim() === '') {
    throw fail(`${field} must be a non-empty string, got ${describeValue(value)}`, example);
  }
  return value;
}

/** The optional `source`: the repository the event comes from. */
function sourceRepo(value, fail, example) {
  if (value !== undefined && (typeof value !== 'string' || value.trim() === '')) {
    throw fail(`source must be a repository name such as 'acme/api', got ${describeValue(value)}`, example);
  }
  return value;
}

/** What a filter expects at its path, as the lock file holds it (a RegExp as `/source/flags`). */
function expectedValue(where, expected, fail, example) {
  if (expected instanceof RegExp) return `/${expected.source}/${expected.flags}`;
  if (isScalar(expected)) return expected;
  if (Array.isArray(expected) && expected.length > 0 && expected.every(isScalar)) return [...expected];
  let got = describeValue(expected);
  if (Array.isArray(expected)) {
    const odd = expected.find((item) => !isScalar(item));
    got = expected.length === 0 ? 'an empty list' : `a list holding ${describeValue(odd)}`;
  }
  throw fail(
    `${where} must be a string, number, boolean, null, RegExp or a non-empty list of strings, numbers, ` +
      `booleans and nulls, got ${got}`,
    example,
  );
}

/** A `match` / `not` filter as `{<JSONPath>: expected}`; undefined when not given or empty. */
function jsonPathFilter(field, filter, fail, example) {
  if (filter === undefined) return undefined;
  if (!isObject(filter) || filter instanceof RegExp) {
    throw fail(`${field} must be an object of JSONPath: expected value, got ${describeValue(filter)}`, example);
  }
  const entries = Object.entries(filter).map(([path, expected]) => {
    if (!path.startsWith('$')) {
      const rooted = /^[.[]/.test(path) ? `$${path}` : `$.${path}`;
      throw fail(`${field} key '${path}' is not a JSONPath (it starts with $)`, `e.g. ${field}: { '${rooted}': ... }`);
    }
    return [path, expectedValue(`${field}['${path}']`, expected, fail, example)];
  });
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** A `status` option: one of `allowed` or a list of them. */
function statusList(value, allowed, fail, example) {
  const list = toList(value);
  const bad = list.findIndex((status) => !allowed.includes(status));
  if (bad >= 0) {
    const close = typeof list[bad] === 'string' ? didYouMean(list[bad], allowed) : '';
    const quoted = allowed.map((status) => `'${status}'`);
    const got = describeValue(list[bad]);
    throw fail(`status must be ${oneOf(quoted)} (one or a list), got ${got}`, `${close}${example}`);
  }
  return list;
}

/**
 * What is wrong with an event name (`must be ..., got <value>`), or undefined for a valid one:
 * 1 to 128 letters, digits, `.`, `_`, `:` and `-`, starting with a letter or digit.
 */
export function eventNameProblem(name) {
  if (typeof name === 'string' && EVENT_NAME.test(name)) return undefined;
  return `must be ${EVENT_NAME_RULE}, got ${describeValue(name)}`;
}

/** True for what defineEvent() returns. */
export const isEventDefinition = (value) => value?._tag === 'EventDefinition';

/** defineEvent(name, schema): a custom event's contract, for kiciEvent({name}) and ctx.emit. */
export function defineEvent(name, schema) {
  const location = callSite();
  const fail = (message, suggestion) => new KiciError(`defineEvent() ${message}`, { location, suggestion });
  const problem = eventNameProblem(name);
  if (problem !== undefined) throw fail(`name ${problem}`, DEFINE_EVENT_EXAMPLE);
  if (!isZodSchema(schema)) {
    // An object of schemas is how step outputs may be written; an event takes one schema.
    if (isObject(schema) && Object.values(schema).some(isZodSchema)) {
      const suggestion = `wrap it in z.object(): ${DEFINE_EVENT_EXAMPLE}`;
      throw fail('schema must be a zod schema, got an object of schemas', suggestion);
    }
    throw fail(`schema must be a zod schema, got ${describeValue(schema)}`, DEFINE_EVENT_EXAMPLE);
  }
  return Object.freeze({ _tag: 'EventDefinition', name, schema });
}

/** kiciEvent({name, match?, not?, source?}): a custom event a step emitted (`ctx.emit`). */
export function kiciEvent(input) {
  const keys = ['name', 'match', 'not', 'source'];
  const { options, fail } = triggerOptions('kiciEvent', input, keys, KICI_EVENT_EXAMPLE);
  const name = isEventDefinition(options.name) ? options.name.name : options.name;
  requiredName('name', name, fail, KICI_EVENT_EXAMPLE, 'needs an event name');
  // A name ctx.emit would refuse could never fire.
  const problem = eventNameProblem(name);
  if (problem !== undefined) throw fail(`name ${problem}`, KICI_EVENT_EXAMPLE);
  return {
    _tag: 'Trigger',
    type: 'kici_event',
    eventName: name,
    match: jsonPathFilter('match', options.match, fail, KICI_EVENT_EXAMPLE),
    not: jsonPathFilter('not', options.not, fail, KICI_EVENT_EXAMPLE),
    source: sourceRepo(options.source, fail, KICI_EVENT_EXAMPLE),
  };
}

/** workflowComplete({name?, status?, source?}): a run of one of the workflows ended. */
export function workflowComplete(input) {
  const keys = ['name', 'status', 'source'];
  const { options, fail } = triggerOptions('workflowComplete', input, keys, WORKFLOW_COMPLETE_EXAMPLE);
  return {
    _tag: 'Trigger',
    type: 'workflow_complete',
    workflows: nonEmpty(nameList('name', options.name, fail, WORKFLOW_COMPLETE_EXAMPLE)),
    statuses: nonEmpty(statusList(options.status, WORKFLOW_STATUSES, fail, WORKFLOW_COMPLETE_EXAMPLE)),
    source: sourceRepo(options.source, fail, WORKFLOW_COMPLETE_EXAMPLE),
  };
}

/** jobComplete({workflow?, job?, status?, source?}): one of the jobs ended. */
export function jobComplete(input) {
  const keys = ['workflow', 'job', 'status', 'source'];
  const { options, fail } = triggerOptions('jobComplete', input, keys, JOB_COMPLETE_EXAMPLE);
  return {
    _tag: 'Trigger',
    type: 'job_complete',
    workflows: nonEmpty(nameList('workflow', options.workflow, fail, JOB_COMPLETE_EXAMPLE)),
    jobs: nonEmpty(nameList('job', options.job, fail, JOB_COMPLETE_EXAMPLE)),
    statuses: nonEmpty(statusList(options.status, JOB_STATUSES, fail, JOB_COMPLETE_EXAMPLE)),
    source: sourceRepo(options.source, fail, JOB_COMPLETE_EXAMPLE),
  };
}

/**
 * A webhook's `auth` as the lock file holds it: `{method, secret, signatureHeader?}` for
 * 'hmac-sha256', `{method, secret, header}` for 'api-key' (`header` filled in). `secret` is
 * the name of a secret; its value is never quoted in an error.
 */
function webhookAuth(auth, fail) {
  if (auth === undefined) return undefined;
  const methods = Object.keys(AUTH_KEYS);
  if (!isObject(auth)) {
    throw fail(
      `auth must be {method: 'hmac-sha256', secret, signatureHeader?} or {method: 'api-key', secret, header?}, ` +
        `got ${describeValue(auth)}`,
      AUTH_EXAMPLES['hmac-sha256'],
    );
  }
  const { method, secret } = auth;
  if (!methods.includes(method)) {
    const close = typeof method === 'string' ? didYouMean(method, methods) : '';
    throw fail(
      `auth.method must be 'hmac-sha256' or 'api-key', got ${describeValue(method)}`,
      `${close}${AUTH_EXAMPLES['hmac-sha256']}`,
    );
  }
  const keys = AUTH_KEYS[method];
  const example = AUTH_EXAMPLES[method];
  const unknown = Object.keys(auth).find((key) => !keys.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `auth has no option '${unknown}' for method '${method}' (use ${oneOf(keys)})`,
      `${didYouMean(unknown, keys)}${example}`,
    );
  }
  if (typeof secret !== 'string' || !SECRET_NAME.test(secret)) {
    throw fail(
      "auth.secret must name a secret, such as 'WEBHOOK_SECRET' (capital letters, digits and _), not hold its value",
      `keep the value in a secret and give its name, ${example}`,
    );
  }
  const headerKey = keys[2];
  const header = auth[headerKey] ?? (method === 'api-key' ? DEFAULT_API_KEY_HEADER : undefined);
  if (header !== undefined && (typeof header !== 'string' || !HEADER_NAME.test(header))) {
    throw fail(`auth.${headerKey} must be an HTTP header name, got ${describeValue(header)}`, example);
  }
  const described = { method, secret };
  if (header !== undefined) described[headerKey] = header;
  return described;
}

function webhookPath(path, fail) {
  if (path !== undefined && (typeof path !== 'string' || path.trim() === '')) {
    throw fail(`path must be a non-empty string, got ${describeValue(path)}`, "e.g. path: 'stripe/payments'");
  }
  return path;
}

/** genericWebhook({source, events?, match?, not?, auth?, path?}): a webhook another service sent. */
export function genericWebhook(input) {
  const keys = ['source', 'events', 'match', 'not', 'auth', 'path'];
  const { options, fail } = triggerOptions('genericWebhook', input, keys, WEBHOOK_EXAMPLE);
  return {
    _tag: 'Trigger',
    type: 'generic_webhook',
    source: requiredName('source', options.source, fail, WEBHOOK_EXAMPLE, "needs a source (the sender's name)"),
    events: nonEmpty(nameList('events', options.events, fail, WEBHOOK_EXAMPLE)),
    match: jsonPathFilter('match', options.match, fail, WEBHOOK_EXAMPLE),
    not: jsonPathFilter('not', options.not, fail, WEBHOOK_EXAMPLE),
    auth: webhookAuth(options.auth, fail),
    path: webhookPath(options.path, fail),
  };
}
