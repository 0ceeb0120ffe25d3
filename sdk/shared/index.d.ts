// Types of @kici-dev/shared: the `$` shell and its process-group registry, line splitting, the
// step logger, the IPC client, secret masking, stack parsing and error texts.
// Declarations only; the implementation is in the .js modules next to this file.

/** The result of one `$` command. Thrown (it is an Error) when the exit code is non-zero. */
export declare class ProcessOutput extends Error {
  /** The command line after interpolation and quoting. */
  readonly command: string;
  readonly stdout: string;
  readonly stderr: string;
  /** `null` when the command was killed by a signal. */
  readonly exitCode: number | null;
  /** The signal that killed the command (`'SIGTERM'`), or `null`. */
  readonly signal: string | null;
  /** True when `exitCode === 0`. */
  readonly ok: boolean;
  /** The captured stdout. */
  toString(): string;
}

/** A running `$` command: await it for a ProcessOutput. */
export declare class ProcessPromise implements PromiseLike<ProcessOutput> {
  /** Runs `command` as it is (no interpolation): `<shell> -c "<set options>; <command>"`. */
  constructor(command: string, options: ShellOptions & { groups: ProcessGroups });
  readonly command: string;
  /** Resolve even when the exit code is non-zero. */
  nothrow(): this;
  /** Keep the output out of the step log (still captured in the ProcessOutput). */
  quiet(): this;
  then<TResult1 = ProcessOutput, TResult2 = never>(
    onfulfilled?: ((value: ProcessOutput) => TResult1 | PromiseLike<TResult1>) | null,
    onrejected?: ((reason: any) => TResult2 | PromiseLike<TResult2>) | null,
  ): Promise<TResult1 | TResult2>;
  catch<TResult = never>(
    onrejected?: ((reason: any) => TResult | PromiseLike<TResult>) | null,
  ): Promise<ProcessOutput | TResult>;
  finally(onfinally?: (() => void) | null): Promise<ProcessOutput>;
}

/** A value allowed inside `${...}` of a `$` template; quoted for bash. */
export type ShellArgument =
  string | number | boolean | ProcessOutput | readonly (string | number | boolean | ProcessOutput)[];

/**
 * The zx-compatible tagged template: `` await $`npm test -- ${file}` ``.
 * Runs `bash -c "set -euo pipefail; <cmd>"` in the step's working directory and environment.
 */
export interface Shell {
  (pieces: TemplateStringsArray, ...values: ShellArgument[]): ProcessPromise;
}

/** Tells a writer that its sink is full: `$` stops reading its command's output until drained. */
export interface FlowControl {
  readonly congested: boolean;
  drained(): Promise<void>;
}

export interface ShellOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** When it fires, the command's process group gets SIGTERM, then SIGKILL after the grace (2 s by default). */
  signal?: AbortSignal;
  /** Receives every output line (without the newline) unless the command is `.quiet()`. */
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Where the commands' process groups are registered (default: a registry of this shell's own). */
  groups?: ProcessGroups;
  /** While `congested`, output is not read (the command blocks writing) until `drained()`. */
  flow?: FlowControl;
  /** Applied to every output line before it is cut and passed to `onLine` (not to what is captured). */
  mask?: Masker;
  /** `'bash'` (default, `set -euo pipefail`) or `'sh'` (`set -eu`). */
  shell?: 'bash' | 'sh';
  /** The grace (ms) between SIGTERM and SIGKILL when `signal` fires with `reason`; undefined: the registry's. */
  killGraceMs?: (reason: unknown) => number | undefined;
}

/** The process groups of `$` commands: stopping one (SIGTERM, SIGKILL after the grace) or all. */
export declare class ProcessGroups {
  /** `killGraceMs`: time between SIGTERM and SIGKILL in `terminate()`, default 2000. */
  constructor(options?: { killGraceMs?: number });
  add(pgid: number): void;
  leaderExited(pgid: number): void;
  /** SIGTERM now, SIGKILL after `graceMs` (default: the registry's) unless the group is gone by then. */
  terminate(pgid: number, graceMs?: number): void;
  /** Resolves once every group sent SIGTERM is gone and its leader's output read, or when `stop` fires. */
  stopped(stop: AbortSignal): Promise<void>;
  /** SIGKILL to every group now, those in their grace included. */
  killAll(): void;
  /** SIGTERM to every group not signalled yet, wait up to `graceMs` for all to be gone, SIGKILL the rest. */
  shutdown(graceMs: number): Promise<void>;
}

export declare function createShell(options: ShellOptions): Shell;
/** Quotes one value for bash (`'...'`, `'\''` for quotes); words without metacharacters stay bare. */
export declare function quote(value: unknown): string;
/** Joins template pieces and quoted values into one command line. */
export declare function buildCommand(pieces: readonly string[], values: readonly unknown[]): string;

/** Cuts a line into pieces of at most `max` UTF-16 code units (default 65536). */
export declare function splitLongLine(line: string, max?: number): string[];

/**
 * Splits decoded output into lines; lines longer than `maxLineLength` (default 65536) come in
 * pieces. With `mask`, every line is masked before it is cut (an unterminated line keeps its
 * last `mask.reach - 1` characters back until more arrives).
 */
export declare class LineSplitter {
  constructor(onLine: (line: string) => void, options?: { maxLineLength?: number; mask?: Masker });
  /** Feeds a chunk; returns the decoded text. */
  push(chunk: string | Uint8Array): string;
  /** Flushes the last unterminated line; returns the text the decoder still held. */
  end(): string;
}

export type LogLevel = 'info' | 'warn' | 'error' | 'debug';

/** `ctx.log`: messages formatted like `console.log`, one log line per text line. */
export interface Logger {
  info(message?: unknown, ...args: unknown[]): void;
  warn(message?: unknown, ...args: unknown[]): void;
  error(message?: unknown, ...args: unknown[]): void;
  debug(message?: unknown, ...args: unknown[]): void;
}

export declare function createLogger(sink: (level: LogLevel, line: string) => void): Logger;

/** JSON lines over an inherited socket (fd 3 for the runner). */
export declare class IpcClient implements FlowControl {
  constructor(fd: number);
  send(message: { type: string; [key: string]: unknown }): void;
  /** True while more than 1 MiB of sent messages wait for the host to read them. */
  readonly congested: boolean;
  drained(): Promise<void>;
  onMessage(listener: (message: { type: string; [key: string]: unknown }) => void): () => void;
  /** Lines that are not JSON objects (they are otherwise ignored). */
  onInvalidLine(listener: (line: string) => void): void;
  onHostClosed(listener: () => void): void;
  /** Flushes pending writes and closes this side. */
  close(): Promise<void>;
}

/** Forms of a secret shorter than this (4) are not masked: it would destroy the logs. */
export declare const MIN_MASKED_LENGTH: number;
/**
 * Replaces every secret value in a text with `***`, and also its base64 (padded or not),
 * base64url, `encodeURIComponent` and JSON-escaped forms and each line of a multi-line value.
 * `reach` is the length of the longest masked form (0 when nothing is masked); `add(values)`
 * masks more values from then on, wherever this masker is used.
 */
export type Masker = ((text: string) => string) & {
  readonly reach: number;
  add(values: Iterable<string>): void;
};

export declare function createMasker(values: Iterable<string>): Masker;

export interface StackFrame {
  /** Absolute path (file:// URLs are converted). */
  file: string;
  line: number;
  column: number;
}

export declare function parseStackFrames(stack: string | undefined): StackFrame[];
/** A stack trace without the KiCI runtime's and Node's internal frames. */
export declare function userStack(stack: string): string;
/** `message` of an Error, `String(value)` of anything else thrown. */
export declare function errorMessage(thrown: unknown): string;
/** `stack` (else `message`) of an Error, `String(value)` of anything else thrown. */
export declare function errorStack(thrown: unknown): string;
