// Trigger factories: `push`, `pr`, `tag`, `dispatch`. Each returns a plain `{_tag: 'Trigger'}`
// value with its list options normalised to arrays (a single value is accepted). Also
// `isEventType`, which knows that a `pr()` trigger's events arrive as `pull_request`.
// Turning them into lock-file triggers (and `push({tags})` into an extra `tag` trigger) is the
// runner's describe step; matching events against them is the orchestrator's job.

import { toList } from './common.js';

/** The pull-request actions a `pr()` trigger listens to when `events` is not given. */
const DEFAULT_PR_EVENTS = ['opened', 'synchronize', 'reopened', 'closed'];

/** Trigger type names that mean the same event type (a `pr()` trigger, a `pull_request` event). */
const EVENT_TYPE_ALIASES = { pr: 'pull_request' };

/** True when `event.type` is `type`; `'pr'` and `'pull_request'` name the same type. */
export function isEventType(event, type) {
  const canonical = (name) => EVENT_TYPE_ALIASES[name] ?? name;
  return event !== undefined && event !== null && canonical(event.type) === canonical(type);
}

export function push({ branches, tags, paths } = {}) {
  return {
    _tag: 'Trigger',
    type: 'push',
    branches: toList(branches),
    tags: tags === undefined ? undefined : toList(tags),
    paths: toList(paths),
  };
}

export function pr({ events, target, source, paths } = {}) {
  return {
    _tag: 'Trigger',
    type: 'pr',
    events: events === undefined ? [...DEFAULT_PR_EVENTS] : toList(events),
    target: toList(target),
    source: toList(source),
    paths: toList(paths),
  };
}

export function tag({ patterns } = {}) {
  return { _tag: 'Trigger', type: 'tag', patterns: toList(patterns) };
}

export function dispatch({ types } = {}) {
  return { _tag: 'Trigger', type: 'dispatch', types: toList(types) };
}
