// The `init` option of a job: commands that prepare the agent before the first step (install
// tools, say), each run as its own `init:<n>` row by the runner (execute.js). It takes the
// generic spec `{run, shell?, timeout?, env?, cache?}`, the mise preset (`'mise'` or
// `{mise: {install?, cache?}}`), `'auto'` (the mise preset when the checkout has a mise config,
// which only the agent can tell), a list of them, or `false`. It normalises them to the
// lock-file shapes: `{run, shell, timeout, env?, cache?}` (`cache` a list of cache specs, see
// cache.js: restored before the command, saved after it succeeded), `{preset: 'mise', run,
// shell, timeout, install, cache}` (`cache` a boolean: the runner derives the spec from the
// config files, engine/mise.js) and `{preset: 'auto', shell, timeout}`.

import { normalizeCacheSpecs } from './cache.js';
import { checkWholeNumber, didYouMean, isObject } from './common.js';

/** Default time an init command may take (10 minutes). */
const DEFAULT_INIT_TIMEOUT_MS = 10 * 60 * 1000;

const SPEC_KEYS = ['run', 'shell', 'timeout', 'env', 'cache'];
const MISE_KEYS = ['install', 'cache'];
const PRESETS = ['mise', 'auto'];
const SHELLS = ['bash', 'sh'];
const FORMS = "{run, shell?, timeout?, env?, cache?}, 'mise', {mise: {install?, cache?}} or 'auto'";
const INIT_EXAMPLE = "e.g. init: { run: 'mise install' } or init: [{ run: './setup.sh', shell: 'sh', timeout: 60000 }]";
const MISE_EXAMPLE = "e.g. init: 'mise' or init: { mise: { install: true, cache: false } }";

/** The mise preset's spec; `install` and `cache` default to true. */
function miseSpec({ install = true, cache = true }) {
  return { preset: 'mise', run: 'mise install', shell: 'bash', timeout: DEFAULT_INIT_TIMEOUT_MS, install, cache };
}

/** `{mise: {install?, cache?}}` as the mise preset's spec. */
function normalizeMise(spec, where, fail) {
  const other = Object.keys(spec).find((key) => key !== 'mise');
  if (other !== undefined) {
    throw fail(
      `${where} has no option '${other}' next to mise (the preset is {mise: {install?, cache?}} alone)`,
      "put your own command in an init entry of its own, e.g. init: [{ mise: {} }, { run: './setup.sh' }]",
    );
  }
  const options = spec.mise;
  if (!isObject(options)) throw fail(`${where}.mise must be {install?, cache?}`, MISE_EXAMPLE);
  const unknown = Object.keys(options).find((key) => !MISE_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `${where}.mise has no option '${unknown}' (use install or cache)`,
      `${didYouMean(unknown, MISE_KEYS)}${MISE_EXAMPLE}`,
    );
  }
  const wrong = MISE_KEYS.find((key) => options[key] !== undefined && typeof options[key] !== 'boolean');
  if (wrong !== undefined) throw fail(`${where}.mise.${wrong} must be true or false`, MISE_EXAMPLE);
  return miseSpec(options);
}

/** One spec: a preset's, or a generic one as `{run, shell, timeout, env?, cache?}`. */
function normalizeSpec(spec, where, fail) {
  if (spec === 'mise') return miseSpec({});
  if (spec === 'auto') return { preset: 'auto', shell: 'bash', timeout: DEFAULT_INIT_TIMEOUT_MS };
  if (isObject(spec) && Object.hasOwn(spec, 'mise')) return normalizeMise(spec, where, fail);
  if (!isObject(spec)) {
    // Another string is a misspelt preset or a command meant as `run`.
    const suggestion =
      typeof spec === 'string'
        ? didYouMean(spec, PRESETS).trim() || `to run it as a command: init: { run: '${spec}' }`
        : INIT_EXAMPLE;
    throw fail(`${where} must be ${FORMS}`, suggestion);
  }
  const unknown = Object.keys(spec).find((key) => !SPEC_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `${where} has no option '${unknown}' (use run, shell, timeout, env or cache)`,
      `${didYouMean(unknown, [...SPEC_KEYS, 'mise'])}${INIT_EXAMPLE}`,
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
 * @param {(message: string, suggestion: string) => Error} fail builds the job's error
 * @returns {({run: string, shell: 'bash' | 'sh', timeout: number, env?: Record<string, string>,
 *   cache?: {key: string, paths: string[], restoreKeys?: string[]}[]}
 *   | {preset: 'mise', run: 'mise install', shell: 'bash', timeout: number, install: boolean, cache: boolean}
 *   | {preset: 'auto', shell: 'bash', timeout: number})[] | undefined}
 */
export function normalizeInit(init, fail) {
  if (init === undefined || init === false) return undefined;
  const specs = Array.isArray(init) ? init : [init];
  if (specs.length === 0) return undefined;
  return specs.map((spec, index) => normalizeSpec(spec, `init[${index}]`, fail));
}
