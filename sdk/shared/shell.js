// The `$` shell steps use: a zx-compatible subset. `createShell()` binds a tagged template to a
// working directory, an environment, an AbortSignal and a line sink; each call runs
// `bash -c "set -euo pipefail; <cmd>"` in its own process group and returns a ProcessPromise.
// A ProcessPromise made directly runs a command string as it is, with `bash` or `sh` (`set -eu`:
// POSIX sh has no pipefail); the runner runs a job's init commands that way.
//
// Interpolated values are shell-quoted, output lines go to the sink as they arrive (unless
// `.quiet()`; reading pauses while the sink's flow control says it is congested), a non-zero
// exit rejects with the ProcessOutput (unless `.nothrow()`), and an abort kills the whole process
// group through the ProcessGroups registry (SIGTERM, then SIGKILL after the grace, even when bash
// already exited but other members of its group did not; the grace may depend on why the signal
// fired).
// It does not decide where lines end up (the caller's sink does) and it keeps no global state.

import { spawn } from 'node:child_process';
import { LineSplitter } from './lines.js';
import { ProcessGroups } from './process-groups.js';

/**
 * @typedef {{readonly congested: boolean, drained(): Promise<void>}} FlowControl
 * @typedef {{cwd: string, env: Record<string, string>, signal?: AbortSignal,
 *            onLine: (stream: 'stdout' | 'stderr', line: string) => void,
 *            groups?: ProcessGroups, flow?: FlowControl,
 *            mask?: import('./mask.js').Masker, shell?: 'bash' | 'sh',
 *            killGraceMs?: (reason: unknown) => number | undefined}} ShellOptions
 *   `shell` defaults to `bash`; `killGraceMs` gives the SIGTERM-to-SIGKILL grace when `signal`
 *   fires with `reason` (undefined: the registry's own)
 */

/** Each shell and the options every command of it runs with. */
const SHELLS = { bash: 'set -euo pipefail', sh: 'set -eu' };

/** Values that need no quoting: they contain no shell metacharacters. */
const SAFE_WORD = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

/** The result of one command. Also an Error, so a failed command can be thrown as it is. */
export class ProcessOutput extends Error {
  /**
   * @param {{command: string, stdout: string, stderr: string, exitCode: number | null, signal: string | null}} fields
   */
  constructor({ command, stdout, stderr, exitCode, signal }) {
    super(
      signal === null
        ? `Command failed with exit code ${exitCode}: ${command}`
        : `Command failed with signal ${signal}: ${command}`,
    );
    this.name = 'ProcessOutput';
    this.command = command;
    this.stdout = stdout;
    this.stderr = stderr;
    this.exitCode = exitCode;
    this.signal = signal;
  }

  /** True when the command exited with code 0. */
  get ok() {
    return this.exitCode === 0;
  }

  toString() {
    return this.stdout;
  }
}

/** Quotes one value for bash: `'...'` with `'\''` for embedded quotes; safe words stay bare. */
export function quote(value) {
  const text = String(value);
  if (SAFE_WORD.test(text)) return text;
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Renders one interpolated value: arrays become space-separated words, outputs their stdout. */
function interpolate(value) {
  if (Array.isArray(value)) return value.map(interpolate).join(' ');
  if (value instanceof ProcessOutput) return quote(value.stdout.replace(/\r?\n$/, ''));
  return quote(value);
}

/** Joins the template pieces and the quoted values into one command line. */
export function buildCommand(pieces, values) {
  let command = pieces[0];
  for (let i = 0; i < values.length; i += 1) command += interpolate(values[i]) + pieces[i + 1];
  return command;
}

/**
 * A running command. Thenable (await it), with zx's `.nothrow()` and `.quiet()` modifiers.
 * Both modifiers must be called before the first output arrives, i.e. in the same expression.
 */
export class ProcessPromise {
  #nothrow = false;
  #quiet = false;
  /** Settles with a ProcessOutput, or with the spawn error; never rejects (no unhandled rejections). */
  #outcome;

  /**
   * @param {string} command
   * @param {ShellOptions} options
   */
  constructor(command, { cwd, env, signal, onLine, groups, flow, mask, shell = 'bash', killGraceMs }) {
    this.command = command;
    this.#outcome = new Promise((resolve) => {
      let child;
      try {
        child = spawn(shell, ['-c', `${SHELLS[shell]}; ${command}`], {
          cwd,
          env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (error) {
        // Arguments Node refuses before spawning (a NUL byte in the command, say).
        resolve({ error });
        return;
      }
      const captured = { stdout: '', stderr: '' };
      for (const stream of /** @type {const} */ (['stdout', 'stderr'])) {
        // Masked before an over-long line is cut; what is captured stays as the command wrote it.
        const lines = new LineSplitter(
          (line) => {
            if (!this.#quiet) onLine(stream, line);
          },
          { mask },
        );
        child[stream].on('data', (chunk) => {
          captured[stream] += lines.push(chunk);
          // Backpressure: while the sink is congested the child blocks on its full pipe.
          if (!this.#quiet && flow?.congested) pauseUntilDrained(child[stream], flow);
        });
        child[stream].on('end', () => {
          captured[stream] += lines.end();
        });
      }
      const kill = () => groups.terminate(child.pid, killGraceMs?.(signal.reason));
      child.on('error', (error) => {
        signal?.removeEventListener('abort', kill);
        resolve({ error });
      });
      child.on('close', (exitCode, exitSignal) => {
        // The leader is gone and its output read; members it left behind stay registered (and
        // killable) until they exit.
        groups.leaderExited(child.pid);
        signal?.removeEventListener('abort', kill);
        resolve({
          output: new ProcessOutput({
            command,
            stdout: captured.stdout,
            stderr: captured.stderr,
            exitCode,
            signal: exitSignal,
          }),
        });
      });
      if (child.pid !== undefined) {
        groups.add(child.pid);
        if (signal?.aborted) kill();
        else signal?.addEventListener('abort', kill, { once: true });
      }
    });
  }

  /** Resolve with the ProcessOutput even when the exit code is non-zero. */
  nothrow() {
    this.#nothrow = true;
    return this;
  }

  /** Keep the output out of the step log (it is still captured in the ProcessOutput). */
  quiet() {
    this.#quiet = true;
    return this;
  }

  then(onFulfilled, onRejected) {
    return this.#outcome
      .then(({ output, error }) => {
        if (error) throw error;
        if (output.ok || this.#nothrow) return output;
        throw output;
      })
      .then(onFulfilled, onRejected);
  }

  catch(onRejected) {
    return this.then(undefined, onRejected);
  }

  finally(onFinally) {
    return this.then(
      (value) => Promise.resolve(onFinally?.()).then(() => value),
      (reason) =>
        Promise.resolve(onFinally?.()).then(() => {
          throw reason;
        }),
    );
  }
}

/** Stops reading `readable` until `flow` has drained (once per congestion). */
function pauseUntilDrained(readable, flow) {
  if (readable.isPaused()) return;
  readable.pause();
  flow.drained().then(() => readable.resume());
}

/**
 * Creates a `$` bound to a directory, an environment, a signal and a line sink. Without
 * `groups`, the shell registers its commands in a registry of its own.
 * @param {ShellOptions} options
 */
export function createShell(options) {
  const bound = { ...options, groups: options.groups ?? new ProcessGroups() };
  return function $(pieces, ...values) {
    if (!Array.isArray(pieces?.raw)) {
      throw new TypeError('$ must be used as a tagged template: $`command ${arg}`');
    }
    return new ProcessPromise(buildCommand(pieces, values), bound);
  };
}
