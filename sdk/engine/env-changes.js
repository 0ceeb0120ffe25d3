// What a row (init command, step or hook) hands on to the rows after it through the env:
// `ctx.setEnv` / `ctx.addPath`, which apply at once (to the row's own env and to the job's),
// and the lines it writes to the files `$KICI_ENV` and `$KICI_PATH`, which apply to the job's
// env when the row ends. Every row gets fresh empty files in a private directory; `close()`
// reads and removes them. The parsing rules and the order are in sdk/PROTOCOL.md (StepContext).
// It does not decide which rows run or whether a failed row's files count (execute.js does),
// and it never touches `process.env`.

import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '@kici-dev/shared';
import { makePrivateDir, removePrivateDir } from './temp-dirs.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names KiCI sets (the host's `KICI_*` layer, the row's `KICI_ENV` / `KICI_PATH`). */
const isKiciName = (name) => name.startsWith('KICI_');

const KICI_REFUSAL = 'KICI_* variables are set by KiCI and cannot be changed';

/** `dir` in front of `PATH` (relative to `workDir`, like every command's cwd). */
function prependPath(env, dir, workDir) {
  const absolute = path.resolve(workDir, dir);
  env.PATH = env.PATH === undefined || env.PATH === '' ? absolute : `${absolute}${path.delimiter}${env.PATH}`;
}

/** The lines of a file as written, without the line ends (`\n` or `\r\n`). */
function linesOf(text) {
  return text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

export class EnvChanges {
  #jobEnv;
  #env;
  #workDir;
  #rowName;
  #isExposed;
  #dir;
  #closed = false;

  /**
   * Makes the row's `$KICI_ENV` and `$KICI_PATH` files (empty, mode 0600, in a new directory of
   * mode 0700 under the OS temp directory) and sets `KICI_ENV` / `KICI_PATH` in `env` to them.
   * @param {{jobEnv: Record<string, string>, env: Record<string, string>, workDir: string,
   *          rowName: string, isExposed: (name: string) => boolean}} scope `jobEnv` is what later
   *   rows copy, `env` the row's own (`ctx.env`, the env of its `$`), `isExposed` tells the names
   *   the row's ctx.secrets exposed
   */
  static async open(scope) {
    const dir = await makePrivateDir('kici-env-');
    const files = { KICI_ENV: path.join(dir, 'env'), KICI_PATH: path.join(dir, 'path') };
    try {
      for (const file of Object.values(files)) await fs.writeFile(file, '', { mode: 0o600, flag: 'wx' });
    } catch (error) {
      await removePrivateDir(dir);
      throw error;
    }
    Object.assign(scope.env, files);
    return new EnvChanges(scope, dir);
  }

  constructor({ jobEnv, env, workDir, rowName, isExposed }, dir) {
    this.#jobEnv = jobEnv;
    this.#env = env;
    this.#workDir = workDir;
    this.#rowName = rowName;
    this.#isExposed = isExposed;
    this.#dir = dir;
  }

  #checkOpen(operation) {
    if (this.#closed) {
      throw new Error(
        `ctx.${operation}() called after '${this.#rowName}' ended; await everything the step starts before it returns`,
      );
    }
  }

  #setEnv(name, value) {
    this.#checkOpen('setEnv');
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      throw new TypeError(
        'setEnv: the name must be an environment variable name such as NODE_ENV (letters, digits and _, not starting with a digit)',
      );
    }
    if (isKiciName(name)) throw new Error(`setEnv: ${KICI_REFUSAL}`);
    if (typeof value !== 'string') throw new TypeError(`setEnv: the value of '${name}' must be a string`);
    // The exposure is undone when the row ends; a value set over it would vanish with it.
    if (this.#isExposed(name)) {
      throw new Error(
        `setEnv: '${name}' holds a secret this step exposed with ctx.secrets and cannot be changed; use another name`,
      );
    }
    this.#env[name] = value;
    this.#jobEnv[name] = value;
  }

  #addPath(dir) {
    this.#checkOpen('addPath');
    if (typeof dir !== 'string' || dir === '') {
      throw new TypeError("addPath: the directory must be a non-empty string, e.g. ctx.addPath('/opt/tool/bin')");
    }
    prependPath(this.#env, dir, this.#workDir);
    prependPath(this.#jobEnv, dir, this.#workDir);
  }

  /** `ctx.setEnv` and `ctx.addPath` of the row. */
  api() {
    return {
      setEnv: (name, value) => this.#setEnv(name, value),
      addPath: (dir) => this.#addPath(dir),
    };
  }

  /** Applies the lines of `$KICI_ENV` to the job env; returns a warning per line ignored for a reason. */
  #applyEnvFile(text) {
    const warnings = [];
    linesOf(text).forEach((line, index) => {
      if (line.trim() === '') return;
      const where = `[kici] $KICI_ENV line ${index + 1}`;
      const split = line.indexOf('=');
      if (split < 0) {
        warnings.push(`${where} has no '=' (write NAME=value, one per line); ignored`);
        return;
      }
      const name = line.slice(0, split);
      if (!ENV_NAME.test(name)) {
        warnings.push(
          `${where}: '${name}' is not an environment variable name (letters, digits and _, not starting with a digit); ignored`,
        );
      } else if (isKiciName(name)) {
        warnings.push(`${where}: ${KICI_REFUSAL}; ignored`);
      } else {
        this.#jobEnv[name] = line.slice(split + 1);
      }
    });
    return warnings;
  }

  /**
   * Ends the row: no more setEnv / addPath, the files' lines applied to the job env (`$KICI_ENV`
   * first, then each line of `$KICI_PATH` in order) when `apply`, the files removed.
   * @returns {Promise<string[]>} `[kici]` warnings for the row's log
   */
  async close({ apply }) {
    this.#closed = true;
    const warnings = [];
    try {
      if (apply) {
        warnings.push(...this.#applyEnvFile(await fs.readFile(path.join(this.#dir, 'env'), 'utf8')));
        for (const dir of linesOf(await fs.readFile(path.join(this.#dir, 'path'), 'utf8'))) {
          if (dir.trim() !== '') prependPath(this.#jobEnv, dir, this.#workDir);
        }
      }
    } catch (error) {
      warnings.push(`[kici] could not read $KICI_ENV / $KICI_PATH: ${errorMessage(error)}`);
    }
    try {
      await removePrivateDir(this.#dir);
    } catch (error) {
      warnings.push(`[kici] could not remove the $KICI_ENV / $KICI_PATH files: ${errorMessage(error)}`);
    }
    return warnings;
  }
}
