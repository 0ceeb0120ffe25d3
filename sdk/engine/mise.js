// The init presets on the agent: `'auto'` is the mise preset when the checkout has a mise config
// file, else nothing; the mise preset runs a bash script (mise must be on PATH, trust the config
// files so mise reads them, `mise install`, hand `mise bin-paths` on through $KICI_PATH) with
// the cache of mise's data dir keyed on the config files' contents. This module only plans the
// row; execute.js runs it like an init command, its cache included.

import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { quote } from '@kici-dev/shared';

/** mise's config files at the checkout root, in the order they go into the cache key. */
export const MISE_CONFIG_FILES = ['mise.toml', '.mise.toml', '.tool-versions', '.config/mise.toml'];

/** The log line of `'auto'` in a checkout without a mise config file. */
export const NO_MISE_CONFIG = 'No mise.toml, .mise.toml, .tool-versions or .config/mise.toml: nothing to set up';

/** What the script prints (stderr, exit 127) on an agent without mise. */
export const NO_MISE =
  "the mise preset needs mise on the agent's PATH (https://mise.jdx.dev/installing-mise.html), or use init: { run: ... } with your own setup";

/**
 * The config files in `workDir`, in MISE_CONFIG_FILES order, with their contents.
 * @returns {Promise<{name: string, content: Buffer}[]>}
 */
export async function miseConfigs(workDir) {
  const configs = [];
  for (const name of MISE_CONFIG_FILES) {
    try {
      configs.push({ name, content: await fs.readFile(path.join(workDir, name)) });
    } catch (error) {
      // ENOTDIR: `.config` is a file.
      if (error.code !== 'ENOENT' && error.code !== 'ENOTDIR') throw error;
    }
  }
  return configs;
}

/**
 * `mise-<platform>-<arch>-<16 hex digits>` of SHA-256 over each config file's name, a NUL and its
 * content, in order: the installed tools are binaries of this platform.
 */
export function miseCacheKey(configs) {
  const hash = createHash('sha256');
  for (const { name, content } of configs) hash.update(name).update('\0').update(content);
  return `mise-${process.platform}-${process.arch}-${hash.digest('hex').slice(0, 16)}`;
}

/**
 * Where mise keeps its tools, as a cache path: $MISE_DATA_DIR, else $XDG_DATA_HOME/mise, else
 * `~/.local/share/mise`. A cache holds only paths under the checkout or `~/`, so a data dir
 * elsewhere gives `{warning}` (a `[kici]` line for the row's log) instead of `{path}`.
 * @param {Record<string, string | undefined>} env the row's env
 */
export function miseDataPath({ MISE_DATA_DIR, XDG_DATA_HOME, HOME }) {
  const [variable, dir] = MISE_DATA_DIR
    ? ['MISE_DATA_DIR', MISE_DATA_DIR]
    : XDG_DATA_HOME
      ? ['XDG_DATA_HOME', path.join(XDG_DATA_HOME, 'mise')]
      : [];
  if (dir === undefined) return { path: '~/.local/share/mise' };
  const relative = HOME ? path.relative(HOME, dir) : '';
  if (path.isAbsolute(dir) && relative !== '' && relative !== '..' && !relative.startsWith(`..${path.sep}`)) {
    return { path: `~/${relative}` };
  }
  return {
    warning:
      `[kici] mise's data dir ${dir} (from ${variable}) is not cached: it is not under $HOME ` +
      `(${HOME || 'unset'}), and a cache holds only paths under the checkout or ~/; ` +
      `set ${variable} to a directory under $HOME to cache it`,
  };
}

/**
 * The bash script of the mise preset (run with `set -euo pipefail` at the checkout root) and a
 * one-line summary of it for the row's error (the script is too long for one).
 * @param {{name: string}[]} configs the config files present
 * @param {boolean} install
 */
function miseScript(configs, install) {
  const commands = [
    ...configs.map(({ name }) => `mise trust --yes --quiet ${quote(name)}`),
    ...(install ? ['mise install'] : []),
    'mise bin-paths >> "$KICI_PATH"',
  ];
  const summary = new Set(commands.map((command) => command.split(' ').slice(0, 2).join(' ')));
  return {
    run: [`command -v mise > /dev/null || { echo ${quote(NO_MISE)} >&2; exit 127; }`, ...commands].join('\n'),
    summary: `mise preset (${[...summary].join(', ')})`,
  };
}

/**
 * What an init row with a preset (`'mise'` or `'auto'`) does: `{skip}` (the line to log, for
 * `'auto'` without a config file), or `{run, shell, summary, env, cache?, warning?}`: the
 * script as an init command, its env on top of the row's, the cache specs of mise's data dir
 * when the spec caches, and why it does not when that dir cannot be cached.
 * @param {{preset: 'mise' | 'auto', install?: boolean, cache?: boolean}} spec `'auto'` installs
 *   and caches
 * @param {{workDir: string, env: Record<string, string | undefined>}} where
 */
export async function misePlan({ preset, install = true, cache = true }, { workDir, env }) {
  const configs = await miseConfigs(workDir);
  if (preset === 'auto' && configs.length === 0) return { skip: NO_MISE_CONFIG };
  const plan = { ...miseScript(configs, install), shell: 'bash', env: { MISE_YES: '1' } };
  if (!cache) return plan;
  const dataPath = miseDataPath(env);
  if (dataPath.warning !== undefined) return { ...plan, warning: dataPath.warning };
  return { ...plan, cache: [{ key: miseCacheKey(configs), paths: [dataPath.path] }] };
}
