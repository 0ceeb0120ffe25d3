// The `init` option of a job: commands that prepare the agent before the first step (install
// tools, say), each run as its own `init:<n>` row by the runner (execute.js). This build honours
// the generic spec `{run, shell?, timeout?, env?, cache?}`, a list of them, or `false`; it
// normalises them to the lock-file shape `[{run, shell, timeout, env?, cache?}]` (`cache` a list
// of cache specs, see cache.js: restored before the command, saved after it succeeded). The
// presets (`'mise'`, `{mise: {...}}`, `'auto'`) are refused as not implemented (E109) rather
// than skipped, so a job never starts without the tools it asked for.

import { normalizeCacheSpecs } from './cache.js';
import { checkWholeNumber, didYouMean, isObject } from './common.js';

/** Default time an init command may take (10 minutes). */
const DEFAULT_INIT_TIMEOUT_MS = 10 * 60 * 1000;

const SPEC_KEYS = ['run', 'shell', 'timeout', 'env', 'cache'];
const SHELLS = ['bash', 'sh'];
const INIT_EXAMPLE = "e.g. init: { run: 'mise install' } or init: [{ run: './setup.sh', shell: 'sh', timeout: 60000 }]";
const GENERIC_SUGGESTION =
  "install mise on the agent and use the generic form, e.g. init: { run: 'mise install' } (mise must be on the agent's PATH)";

/** The E109 error of a preset this build does not implement, or undefined. */
function unimplemented(spec, where, fail) {
  if (spec === 'mise' || (isObject(spec) && Object.hasOwn(spec, 'mise'))) {
    return fail(`${where}: the mise preset is not implemented by this build`, GENERIC_SUGGESTION, 'E109');
  }
  if (spec === 'auto') {
    return fail(
      `${where}: 'auto' (mise when mise.toml, .mise.toml or .tool-versions exists) is not implemented by this build`,
      GENERIC_SUGGESTION,
      'E109',
    );
  }
  return undefined;
}

/** One generic spec as `{run, shell, timeout, env?, cache?}`. */
function normalizeSpec(spec, where, fail) {
  const notImplemented = unimplemented(spec, where, fail);
  if (notImplemented !== undefined) throw notImplemented;
  if (!isObject(spec)) {
    const example = typeof spec === 'string' ? `e.g. init: { run: '${spec}' }` : INIT_EXAMPLE;
    throw fail(`${where} must be {run, shell?, timeout?, env?, cache?}`, example);
  }
  const unknown = Object.keys(spec).find((key) => !SPEC_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `${where} has no option '${unknown}' (use run, shell, timeout, env or cache)`,
      `${didYouMean(unknown, SPEC_KEYS)}${INIT_EXAMPLE}`,
    );
  }
  const { run, shell = 'bash', timeout = DEFAULT_INIT_TIMEOUT_MS, env, cache } = spec;
  if (typeof run !== 'string' || run.trim() === '') {
    throw fail(`${where}.run must be a non-empty command string`, INIT_EXAMPLE);
  }
  if (!SHELLS.includes(shell)) throw fail(`${where}.shell must be 'bash' or 'sh'`, "leave shell out for 'bash'");
  checkWholeNumber(
    timeout,
    { field: `${where}.timeout`, min: 1, unit: 'ms', example: 'e.g. timeout: 5 * 60 * 1000 for 5 minutes' },
    fail,
  );
  if (env !== undefined && !(isObject(env) && Object.values(env).every((value) => typeof value === 'string'))) {
    throw fail(`${where}.env must be an object of string values`, "e.g. env: { MISE_YES: '1' }");
  }
  const normalized = { run, shell, timeout };
  if (env !== undefined) normalized.env = env;
  const caches = cache === undefined ? [] : normalizeCacheSpecs(cache, fail, `${where}.cache`);
  if (caches.length > 0) normalized.cache = caches;
  return normalized;
}

/**
 * @param {unknown} init the option as written (`false`, `undefined` and `[]` mean no init)
 * @param {(message: string, suggestion: string, code?: string) => Error} fail builds the job's error
 * @returns {{run: string, shell: 'bash' | 'sh', timeout: number, env?: Record<string, string>,
 *   cache?: {key: string, paths: string[], restoreKeys?: string[]}[]}[] | undefined}
 */
export function normalizeInit(init, fail) {
  if (init === undefined || init === false) return undefined;
  const specs = Array.isArray(init) ? init : [init];
  if (specs.length === 0) return undefined;
  return specs.map((spec, index) => normalizeSpec(spec, `init[${index}]`, fail));
}
