// `dynamicJob()`: a generator that returns job() values at run time, with an optional group (a
// name for the generator) and optional needs (the same forms as job() needs, normalised the same
// way). Returns a frozen `{_tag: 'DynamicJob'}` value that `workflow({jobs})` accepts among its
// jobs; the `dynamicJob(` call site is kept for describe.
// It never calls the generator: the runner does (evaluate kind `jobs`, and again in execute).

import { GROUP_NEED_PREFIX, KiciError, UNNAMED, callSite, toList } from './common.js';
import { normalizeNeed } from './job.js';

const GENERATOR_EXAMPLE =
  "e.g. dynamicJob('packages', async ({ $ }) => [job('build', { runsOn: 'kici:os:linux', run: async () => {} })])";

/** The four call forms as one `{group, needs, generate}` (unchecked). */
function dynamicJobOptions(first, second) {
  if (typeof first === 'function') return { generate: first };
  if (typeof first === 'string') {
    return typeof second === 'function' ? { group: first, generate: second } : { ...second, group: first };
  }
  return { ...first };
}

/**
 * dynamicJob(generate) | dynamicJob(group, generate) | dynamicJob(group, {needs?, generate})
 * | dynamicJob({group?, needs?, generate})
 */
export function dynamicJob(groupOrOptions, generateOrOptions) {
  const location = callSite();
  const { group, needs, generate } = dynamicJobOptions(groupOrOptions, generateOrOptions);
  if (typeof generate !== 'function') {
    throw new KiciError('dynamicJob() needs a generator function', { location, suggestion: GENERATOR_EXAMPLE });
  }
  if (group !== undefined && (typeof group !== 'string' || group === '')) {
    throw new KiciError('dynamicJob() group must be a non-empty string', {
      location,
      suggestion: "name the group first, e.g. dynamicJob('packages', generate), or leave it out",
    });
  }
  const fail = (message, suggestion) =>
    new KiciError(`Dynamic job "${group ?? UNNAMED}": ${message}`, { location, suggestion });
  const value = { _tag: 'DynamicJob' };
  if (group !== undefined) value.group = group;
  if (needs !== undefined) value.needs = Object.freeze(toList(needs).map((entry) => normalizeNeed(entry, fail)));
  value.generate = generate;
  value.location = location;
  return Object.freeze(value);
}

/**
 * dynamicGroup(name, {when?}): a `needs` entry meaning every job the generators of group `name`
 * produced (`dynamicJob(name, ...)`). A job that needs it waits until those generators ran and
 * all their jobs finished, then runs when `when` (default 'on-success') holds for them; a group
 * that produced no job satisfies it at once.
 */
export function dynamicGroup(name, options = {}) {
  const location = callSite();
  if (typeof name !== 'string' || name === '') {
    throw new KiciError('dynamicGroup() needs the group name of a dynamicJob()', {
      location,
      suggestion: "e.g. needs: [dynamicGroup('packages')] with dynamicJob('packages', generate) in the workflow",
    });
  }
  const value = { _tag: 'DynamicGroup', group: name };
  if (options?.when !== undefined) value.when = options.when;
  return Object.freeze(value);
}
