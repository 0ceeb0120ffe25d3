// `ctx.secrets` of one step or hook row: reading the secret values the host sent with the
// execute request (`request.secrets`), exposing one as an env var or as a file for the rest of
// the row, and recording the names the row read (`secretsAccessed` of its step.complete).
// `close()` undoes what the row exposed and removes its files when the row ends (temp-dirs.js
// removes them at exit if the runner ends first); afterwards a step left running (one that
// ignored its signal) can no longer expose anything.
// It does not mask anything (output.js does, for every text the runner sends).

import fs from 'node:fs/promises';
import path from 'node:path';
import { SecretNotFoundError } from '@kici-dev/sdk';
import { errorMessage } from '@kici-dev/shared';
import { makePrivateDir, removePrivateDir } from './temp-dirs.js';

/**
 * Env vars rows set in `process.env`, by name: the value before the first row set it and what
 * each row still holding it set. `process.env` is one for all rows, so parallel steps that
 * expose the same name must not restore it under each other's feet.
 * @type {Map<string, {original: string | undefined, holders: Map<StepSecrets, string>}>}
 */
const processExposures = new Map();

function holdProcessEnv(holder, name, value) {
  if (!processExposures.has(name)) {
    processExposures.set(name, { original: process.env[name], holders: new Map() });
  }
  processExposures.get(name).holders.set(holder, value);
  process.env[name] = value;
}

function releaseProcessEnv(holder, name) {
  const exposure = processExposures.get(name);
  exposure.holders.delete(holder);
  const remaining = [...exposure.holders.values()];
  if (remaining.length > 0) {
    process.env[name] = remaining.at(-1);
    return;
  }
  processExposures.delete(name);
  if (exposure.original === undefined) delete process.env[name];
  else process.env[name] = exposure.original;
}

/** A plain file name: no directory part, not `.` or `..`. */
const isFileName = (name) =>
  typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/');

/** Name of the mounted file when `mountFile` is given none. */
const DEFAULT_FILE_NAME = 'secret';

export class StepSecrets {
  #secrets;
  #env;
  #rowName;
  #accessed = new Set();
  /** Names set in the row's env, with the value they had before (undefined: unset). */
  #envBefore = new Map();
  #dirs = [];
  #closed = false;

  /**
   * @param {{secrets?: Record<string, {value: string, scope?: string}>, env: Record<string, string>,
   *          rowName: string}} scope `env` is the row's own env (`ctx.env`, the env of its `$`)
   */
  constructor({ secrets = {}, env, rowName }) {
    this.#secrets = secrets;
    this.#env = env;
    this.#rowName = rowName;
  }

  /** The names the row read (get, getMeta, expose, mountFile, exposeFile), sorted. */
  get accessed() {
    return [...this.#accessed].sort();
  }

  /** True while the row has `name` exposed (expose, exposeFile). */
  isExposed(name) {
    return this.#envBefore.has(name);
  }

  #list() {
    return Object.keys(this.#secrets).sort();
  }

  #has(name) {
    return Object.hasOwn(this.#secrets, name);
  }

  /** The secret `name`, recorded as read; throws SecretNotFoundError when there is none. */
  #read(name) {
    if (!this.#has(name)) throw new SecretNotFoundError(name, this.#list());
    this.#accessed.add(name);
    return this.#secrets[name];
  }

  #checkOpen(operation) {
    if (this.#closed) {
      throw new Error(
        `ctx.secrets.${operation}() called after '${this.#rowName}' ended; await everything the step starts before it returns`,
      );
    }
  }

  /** Sets `name` in the row's env and in `process.env` until `close()`. */
  #setEnv(name, value) {
    if (!this.#envBefore.has(name)) this.#envBefore.set(name, this.#env[name]);
    this.#env[name] = value;
    holdProcessEnv(this, name, value);
  }

  async #mountFile({ sources, divider = '\n', mode = 0o600, name = DEFAULT_FILE_NAME } = {}) {
    this.#checkOpen('mountFile');
    if (!Array.isArray(sources) || sources.length === 0 || !sources.every((source) => typeof source === 'string')) {
      throw new TypeError(
        "mountFile: sources must be a non-empty array of secret names, e.g. { sources: ['DEPLOY_KEY'] }",
      );
    }
    if (typeof divider !== 'string') throw new TypeError("mountFile: divider must be a string (default '\\n')");
    if (!Number.isSafeInteger(mode) || mode < 0 || mode > 0o777) {
      throw new TypeError('mountFile: mode must be permission bits such as 0o600 (the default) or 0o400');
    }
    if (!isFileName(name)) throw new TypeError("mountFile: name must be a plain file name such as 'key.pem'");
    // Every name is checked before any is recorded as read.
    const missing = sources.find((source) => !this.#has(source));
    if (missing !== undefined) throw new SecretNotFoundError(missing, this.#list());
    const content = sources.map((source) => this.#read(source).value).join(divider);
    // Mode 0700: only the runner's user can list or open what is in it.
    const dir = await makePrivateDir('kici-secret-');
    if (this.#closed) {
      await removePrivateDir(dir);
      this.#checkOpen('mountFile');
    }
    this.#dirs.push(dir);
    const file = path.join(dir, name);
    await fs.writeFile(file, content, { mode, flag: 'wx' });
    // The umask may have taken bits away from `mode`.
    await fs.chmod(file, mode);
    return file;
  }

  /** The `ctx.secrets` object. */
  api() {
    return Object.freeze({
      get: async (name) => this.#read(name).value,
      has: (name) => this.#has(name),
      list: () => this.#list(),
      getMeta: (name) => ({ name, scope: this.#read(name).scope }),
      expose: (name) => {
        this.#checkOpen('expose');
        this.#setEnv(name, this.#read(name).value);
      },
      mountFile: (options) => this.#mountFile(options),
      exposeFile: async (envVar, options) => {
        if (typeof envVar !== 'string' || envVar === '' || envVar.includes('=')) {
          throw new TypeError(
            "exposeFile: the first argument must be an env var name, e.g. exposeFile('KUBECONFIG', {...})",
          );
        }
        const file = await this.#mountFile(options);
        this.#checkOpen('exposeFile');
        this.#setEnv(envVar, file);
        return file;
      },
    });
  }

  /**
   * Undoes every expose (row env and `process.env`) and removes the mounted files.
   * @returns {Promise<string[]>} why a file could not be removed, one text per directory
   */
  async close() {
    this.#closed = true;
    for (const [name, before] of this.#envBefore) {
      if (before === undefined) delete this.#env[name];
      else this.#env[name] = before;
      releaseProcessEnv(this, name);
    }
    this.#envBefore.clear();
    const removals = await Promise.allSettled(this.#dirs.map(removePrivateDir));
    return removals.filter(({ status }) => status === 'rejected').map(({ reason }) => errorMessage(reason));
  }
}
