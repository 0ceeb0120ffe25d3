// Trigger factories: `push`, `pr`, `tag`, `dispatch`. Each checks its options (an object with
// only the option names it knows: a misspelt filter would otherwise match every event) and
// returns a plain `{_tag: 'Trigger'}` value with its list options normalised to arrays (a
// single value is accepted) and its inputs as InputSpecs (dispatch-inputs.js). Also
// `isEventType`, which knows that a `pr()` trigger's events arrive as `pull_request`.
// Turning them into lock-file triggers (and `push({tags})` into an extra `tag` trigger) is the
// runner's describe step; matching events against them is the orchestrator's job.

import { KiciError, callSite, describeValue, didYouMean, isObject, toList } from './common.js';
import { inputSpecs } from './dispatch-inputs.js';

/** The pull-request actions a `pr()` trigger listens to when `events` is not given. */
const DEFAULT_PR_EVENTS = ['opened', 'synchronize', 'reopened', 'closed'];

/** Trigger type names that mean the same event type (a `pr()` trigger, a `pull_request` event). */
const EVENT_TYPE_ALIASES = { pr: 'pull_request' };

/** True when `event.type` is `type`; `'pr'` and `'pull_request'` name the same type. */
export function isEventType(event, type) {
  const canonical = (name) => EVENT_TYPE_ALIASES[name] ?? name;
  return event !== undefined && event !== null && canonical(event.type) === canonical(type);
}

/** `['a', 'b', 'c']` as `a, b or c`. */
function oneOf(names) {
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/**
 * The options of trigger factory `factory` (`{}` when not given), checked to be an object with
 * only `keys`; with the factory's `fail(message, suggestion)`, which prefixes `<factory>() ` and
 * carries the call site.
 */
function triggerOptions(factory, options, keys, example) {
  const location = callSite();
  const fail = (message, suggestion) => new KiciError(`${factory}() ${message}`, { location, suggestion });
  if (options === undefined) return { options: {}, fail };
  if (!isObject(options)) throw fail(`options must be an object, got ${describeValue(options)}`, example);
  const unknown = Object.keys(options).find((key) => !keys.includes(key));
  if (unknown !== undefined) {
    throw fail(`has no option '${unknown}' (use ${oneOf(keys)})`, `${didYouMean(unknown, keys)}${example}`);
  }
  return { options, fail };
}

/** A list option of names (`types`, `events`, ...) as an array; a single string is a list of one. */
function nameList(field, value, fail, example) {
  const list = toList(value);
  const bad = list.findIndex((name) => typeof name !== 'string' || name === '');
  if (bad >= 0) {
    throw fail(`${field} must be a non-empty string or a list of them, got ${describeValue(list[bad])}`, example);
  }
  return list;
}

const PUSH_EXAMPLE = "e.g. push({ branches: 'main', paths: ['src/**', '!docs/**'] })";
const PR_EXAMPLE = "e.g. pr({ events: ['opened', 'synchronize'], target: 'main' })";
const TAG_EXAMPLE = "e.g. tag({ patterns: 'v*' })";
const DISPATCH_EXAMPLE = "e.g. dispatch({ types: 'deploy', inputs: { environment: z.string().default('staging') } })";

export function push(input) {
  const { options } = triggerOptions('push', input, ['branches', 'tags', 'paths'], PUSH_EXAMPLE);
  const { branches, tags, paths } = options;
  return {
    _tag: 'Trigger',
    type: 'push',
    branches: toList(branches),
    tags: tags === undefined ? undefined : toList(tags),
    paths: toList(paths),
  };
}

export function pr(input) {
  const { options } = triggerOptions('pr', input, ['events', 'target', 'source', 'paths'], PR_EXAMPLE);
  const { events, target, source, paths } = options;
  return {
    _tag: 'Trigger',
    type: 'pr',
    events: events === undefined ? [...DEFAULT_PR_EVENTS] : toList(events),
    target: toList(target),
    source: toList(source),
    paths: toList(paths),
  };
}

export function tag(input) {
  const { options } = triggerOptions('tag', input, ['patterns'], TAG_EXAMPLE);
  return { _tag: 'Trigger', type: 'tag', patterns: toList(options.patterns) };
}

export function dispatch(input) {
  const { options, fail } = triggerOptions('dispatch', input, ['types', 'inputs'], DISPATCH_EXAMPLE);
  return {
    _tag: 'Trigger',
    type: 'dispatch',
    types: nameList('types', options.types, fail, DISPATCH_EXAMPLE),
    inputs: options.inputs === undefined ? undefined : inputSpecs(options.inputs, fail),
  };
}
