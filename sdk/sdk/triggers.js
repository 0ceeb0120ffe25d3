// Trigger factories: `push`, `pr`, `tag`, `dispatch`, `schedule`. Each checks its options (an
// object with only the option names it knows: a misspelt filter would otherwise match every
// event) and returns a plain `{_tag: 'Trigger'}` value with its list options normalised to
// arrays (a single value is accepted), its inputs as InputSpecs (dispatch-inputs.js) and a
// schedule's cron expression and time zone checked for what an author gets wrong (the
// orchestrator parses the expression for real). Also `isEventType`, which knows that a `pr()`
// trigger's events arrive as `pull_request`. The helpers the factories check their options with
// are shared with event-triggers.js.
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
export function oneOf(names) {
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/**
 * The options of trigger factory `factory` (`{}` when not given), checked to be an object with
 * only `keys`; with the factory's `fail(message, suggestion)`, which prefixes `<factory>() ` and
 * carries the call site.
 */
export function triggerOptions(factory, options, keys, example) {
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
export function nameList(field, value, fail, example) {
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

const SCHEDULE_EXAMPLE = "e.g. schedule({ cron: '0 3 * * 1-5', timezone: 'Europe/Berlin' }) for 03:00 on weekdays";
const CRON_FIELDS_EXAMPLE =
  "write minute hour day-of-month month day-of-week, e.g. '*/15 * * * *' for every 15 minutes " +
  "or '0 3 * * 1-5' for 03:00 on weekdays (no seconds or year field)";
const CRON_NICKNAMES = ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually'];
const PLAIN_FIELD = /^[0-9*,/-]+$/;
const MONTH_FIELD = /^(?:[0-9*,/-]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)+$/i;
const DAY_FIELD = /^(?:[0-9*,/-]|sun|mon|tue|wed|thu|fri|sat)+$/i;
/** The five fields in order: digits and `* , - /`, in the month and day-of-week fields also names. */
const CRON_FIELDS = [
  { name: 'minute', pattern: PLAIN_FIELD, names: '' },
  { name: 'hour', pattern: PLAIN_FIELD, names: '' },
  { name: 'day-of-month', pattern: PLAIN_FIELD, names: '' },
  { name: 'month', pattern: MONTH_FIELD, names: ' and month names (JAN)' },
  { name: 'day-of-week', pattern: DAY_FIELD, names: ' and day names (MON)' },
];

/** `cron` trimmed, when it is 5 fields of cron characters or a nickname. */
function checkedCron(cron, fail) {
  if (cron === undefined || (typeof cron === 'string' && cron.trim() === '')) {
    throw fail('needs a cron expression', SCHEDULE_EXAMPLE);
  }
  if (typeof cron !== 'string') throw fail(`cron must be a string, got ${describeValue(cron)}`, SCHEDULE_EXAMPLE);
  const expression = cron.trim();
  if (expression.startsWith('@')) {
    if (CRON_NICKNAMES.includes(expression)) return expression;
    throw fail(
      `cron '${expression}' is not supported (use 5 fields or ${oneOf(CRON_NICKNAMES)})`,
      `${didYouMean(expression, CRON_NICKNAMES)}${CRON_FIELDS_EXAMPLE}`,
    );
  }
  const fields = expression.split(/\s+/);
  if (fields.length !== CRON_FIELDS.length) {
    throw fail(`cron '${expression}' has ${fields.length} fields, not 5`, CRON_FIELDS_EXAMPLE);
  }
  fields.forEach((field, index) => {
    const { name, pattern, names } = CRON_FIELDS[index];
    if (!pattern.test(field)) {
      throw fail(
        `cron '${expression}' has an invalid ${name} field '${field}'`,
        `a field is made of digits, *, ',', '-' and '/'${names}; ${CRON_FIELDS_EXAMPLE}`,
      );
    }
  });
  return expression;
}

/**
 * True for a time-zone name Intl knows (aliases such as 'US/Eastern' too) written as the IANA
 * database spells it. Intl also takes other cases ('europe/paris') and, when newer, UTC offsets
 * ('+01:00'); the orchestrator's time-zone database takes neither, and every IANA name's parts
 * start with a capital letter.
 */
function isTimeZone(name) {
  if (typeof name !== 'string' || !name.split('/').every((part) => /^[A-Z]/.test(part))) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export function schedule(input) {
  const keys = ['cron', 'timezone', 'description', 'inputs'];
  const { options, fail } = triggerOptions('schedule', input, keys, SCHEDULE_EXAMPLE);
  const { cron, timezone = 'UTC', description, inputs } = options;
  const cronExpression = checkedCron(cron, fail);
  if (!isTimeZone(timezone)) {
    const zones = ['UTC', ...Intl.supportedValuesOf('timeZone')];
    const close = typeof timezone === 'string' ? didYouMean(timezone, zones) : '';
    throw fail(
      `timezone must be an IANA time-zone name, got ${describeValue(timezone)}`,
      `${close}e.g. timezone: 'Europe/Berlin' or 'America/New_York'; leave it out for UTC`,
    );
  }
  if (description !== undefined && typeof description !== 'string') {
    throw fail(`description must be a string, got ${describeValue(description)}`, SCHEDULE_EXAMPLE);
  }
  return {
    _tag: 'Trigger',
    type: 'schedule',
    cronExpression,
    timezone,
    description,
    inputs: inputs === undefined ? undefined : inputSpecs(inputs, fail, { scheduled: true }),
  };
}
