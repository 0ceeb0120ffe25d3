// Cache specs, as a job's or a step's `cache` option, an init spec's `cache` and
// `ctx.cache.restore/save` take them: `{key, paths, restoreKeys?}`. The host restores the entry
// saved under `key`, else the newest entry whose key starts with one of `restoreKeys` (tried in
// order), and saves `paths` under `key` unless an entry has that key already (the first save
// wins). Paths are relative to the checkout or start with `~/` (the agent's home): the host packs
// and unpacks them there, so a path must not reach outside with `/` or `..`.
// This module only validates and normalises; the runner asks the host (engine/cache.js).

import { describeValue, didYouMean, isObject, toList } from './common.js';

const SPEC_KEYS = ['key', 'paths', 'restoreKeys'];
const CACHE_EXAMPLE =
  "e.g. cache: { key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: ['npm-'] }";

const isNonEmptyString = (value) => typeof value === 'string' && value !== '';

/** Relative without `..` (under the checkout) or `~/...` (under the agent's home). */
function isCachePath(path) {
  const rest = path.startsWith('~/') ? path.slice(2) : path;
  return !rest.startsWith('/') && !rest.startsWith('~') && !rest.split('/').includes('..');
}

/** One spec as `{key, paths, restoreKeys?}`; `where` names it in errors (`cache[1]`). */
function normalizeSpec(spec, where, fail) {
  if (!isObject(spec)) throw fail(`${where} must be {key, paths, restoreKeys?}`, CACHE_EXAMPLE);
  const unknown = Object.keys(spec).find((key) => !SPEC_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `${where} has no option '${unknown}' (use key, paths or restoreKeys)`,
      `${didYouMean(unknown, SPEC_KEYS)}${CACHE_EXAMPLE}`,
    );
  }
  const { key, paths, restoreKeys } = spec;
  if (!isNonEmptyString(key)) throw fail(`${where}.key must be a non-empty string`, CACHE_EXAMPLE);
  const pathList = toList(paths);
  if (pathList.length === 0) throw fail(`${where}.paths must be a non-empty list of paths`, CACHE_EXAMPLE);
  pathList.forEach((path, index) => {
    if (!isNonEmptyString(path) || !isCachePath(path)) {
      throw fail(
        `${where}.paths[${index}] must be relative to the checkout or start with ~/, without '..', got ${describeValue(path)}`,
        "e.g. paths: ['node_modules', '~/.cache/pip']",
      );
    }
  });
  const restoreList = toList(restoreKeys);
  if (!restoreList.every(isNonEmptyString)) {
    throw fail(`${where}.restoreKeys must be a list of non-empty key prefixes`, "e.g. restoreKeys: ['npm-v1-']");
  }
  const normalized = { key, paths: pathList };
  if (restoreList.length > 0) normalized.restoreKeys = restoreList;
  return normalized;
}

/**
 * A CacheSpec or a list of them as `[{key, paths, restoreKeys?}]` (`paths` and `restoreKeys`
 * also take a single string; `restoreKeys` is left out when empty). `[]` gives `[]`.
 * @param {unknown} value
 * @param {(message: string, suggestion: string) => Error} fail builds the caller's error
 * @param {string} [where] how errors name the option: `<where>.key` for a single spec,
 *   `<where>[<i>].key` in a list
 * @returns {{key: string, paths: string[], restoreKeys?: string[]}[]}
 */
export function normalizeCacheSpecs(value, fail, where = 'cache') {
  if (!Array.isArray(value)) return [normalizeSpec(value, where, fail)];
  return value.map((spec, index) => normalizeSpec(spec, `${where}[${index}]`, fail));
}

/**
 * A job's or a step's `cache` option: the normalised list, or undefined when it is not given or
 * `[]` (no cache, so no cache rows for a job and nothing asked of the host).
 * @param {(message: string, suggestion: string) => Error} fail builds the job's or step's error
 */
export function normalizeCacheOption(value, fail) {
  if (value === undefined) return undefined;
  const specs = normalizeCacheSpecs(value, fail);
  return specs.length > 0 ? specs : undefined;
}
