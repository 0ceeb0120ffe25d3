// Caches over IPC: the runner asks the host to restore or save an entry (`cache.request`) and
// waits for its `cache.response`; the host does the transfer itself (it packs and unpacks the
// paths relative to the job's working directory, `~/` being $HOME). This module also decides
// what an answer means for the log of the row that asked (the exact lines of sdk/PROTOCOL.md):
// a host that could not restore or save makes a warning, never a failed row, except for an
// explicit `ctx.cache.save`, which rejects so the author can decide.
// Which rows restore and save when is execute.js's; `ctx.cache` is built here for context.js.
// `client` below is the runner's HostRequests of `cache.request` (host-requests.js).

import { normalizeCacheSpecs } from '@kici-dev/sdk/internal';

/** Asks the host: `{answer}`, or `{error}` with the host's text or why no answer came. */
async function ask(client, op, { key, paths, restoreKeys = [] }) {
  const fields = { op, key, paths };
  if (op === 'restore' && restoreKeys.length > 0) fields.restoreKeys = restoreKeys;
  try {
    const answer = await client.request(fields);
    return typeof answer.error === 'string' ? { error: answer.error } : { answer };
  } catch (error) {
    return { error: error.message };
  }
}

function warn(log, op, key, error) {
  log.line('log', `[kici] cache ${op} failed for key ${key}: ${error}`, 'warn');
}

/**
 * Restores one spec and logs the outcome on `log`; a host error counts as a miss (with a
 * warning). `exact` is true when the entry of `key` itself was restored.
 * @returns {Promise<{hit: boolean, matchedKey?: string, exact: boolean}>}
 */
export async function restoreCache(client, spec, log) {
  const { answer, error } = await ask(client, 'restore', spec);
  if (error !== undefined) {
    warn(log, 'restore', spec.key, error);
    return { hit: false, exact: false };
  }
  if (answer.hit !== true) {
    log.line('log', `Cache not found for key ${spec.key}`, 'info');
    return { hit: false, exact: false };
  }
  const matchedKey = typeof answer.matchedKey === 'string' ? answer.matchedKey : spec.key;
  log.line('log', `Cache restored from key ${matchedKey} (${answer.sizeBytes ?? 0} bytes)`, 'info');
  return { hit: true, matchedKey, exact: matchedKey === spec.key };
}

/**
 * Saves one spec and logs the outcome on `log`. Resolves with the host's error text when it
 * could not save (nothing logged then: the caller decides), else undefined.
 */
async function saveCache(client, spec, log) {
  const { answer, error } = await ask(client, 'save', spec);
  if (error !== undefined) return error;
  if (answer.saved === true) {
    log.line('log', `Cache saved with key ${spec.key} (${answer.sizeBytes ?? 0} bytes)`, 'info');
  } else if (answer.reason === 'exists') {
    log.line('log', `Cache for key ${spec.key} already exists; not saved`, 'info');
  } else {
    log.line('log', `Cache for key ${spec.key} not saved: ${answer.reason ?? 'no reason given'}`, 'info');
  }
  return undefined;
}

/**
 * Restores the specs in order (an init row's `cache`, the job's `cache`).
 * @returns {Promise<boolean[]>} per spec, whether its restore hit its exact key
 */
export async function restoreCaches(client, specs, log) {
  const exact = [];
  for (const spec of specs) exact.push((await restoreCache(client, spec, log)).exact);
  return exact;
}

/**
 * Saves the specs in order, except those whose restore hit their exact key (`exact[i]`): the
 * entry is there already. A host error is a warning; the row still succeeds.
 */
export async function saveCaches(client, specs, exact, log) {
  for (const [index, spec] of specs.entries()) {
    if (exact[index]) {
      log.line('log', `Cache for key ${spec.key} was restored exactly; not saved`, 'info');
      continue;
    }
    const error = await saveCache(client, spec, log);
    if (error !== undefined) warn(log, 'save', spec.key, error);
  }
}

/** One spec as `ctx.cache.restore/save` take it; a list or an invalid spec rejects with TypeError. */
function checkedSpec(method, spec) {
  const fail = (message, suggestion) => new TypeError(`cache.${method}: ${message}; ${suggestion}`);
  if (Array.isArray(spec)) {
    throw fail('takes one cache spec, not a list', `call cache.${method}() once per spec`);
  }
  return normalizeCacheSpecs(spec, fail, 'spec')[0];
}

/**
 * `ctx.cache` of a step or hook row: its lines go to the row's `log`.
 * @returns {{restore: (spec: object) => Promise<{hit: boolean, matchedKey?: string}>,
 *           save: (spec: object) => Promise<void>}}
 */
export function cacheApi(client, log) {
  return {
    restore: async (spec) => {
      const { hit, matchedKey } = await restoreCache(client, checkedSpec('restore', spec), log);
      return hit ? { hit, matchedKey } : { hit };
    },
    save: async (spec) => {
      const checked = checkedSpec('save', spec);
      const error = await saveCache(client, checked, log);
      if (error !== undefined) throw new Error(`cache save failed for key ${checked.key}: ${error}`);
    },
  };
}
