// Types of @kici-dev/shared: the `$` shell, the step logger, the IPC client and stack parsing.
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

export interface ShellOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** When it fires, the command's process group gets SIGTERM, then SIGKILL after 2 s. */
  signal?: AbortSignal;
  /** Receives every output line (without the newline) unless the command is `.quiet()`. */
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
}

export declare function createShell(options: ShellOptions): Shell;
/** Quotes one value for bash (`'...'`, `'\''` for quotes); words without metacharacters stay bare. */
export declare function quote(value: unknown): string;
/** Joins template pieces and quoted values into one command line. */
export declare function buildCommand(pieces: readonly string[], values: readonly unknown[]): string;

/** Splits decoded output into lines. */
export declare class LineSplitter {
  constructor(onLine: (line: string) => void);
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
export declare class IpcClient {
  constructor(fd: number);
  send(message: { type: string; [key: string]: unknown }): void;
  onMessage(listener: (message: { type: string; [key: string]: unknown }) => void): () => void;
  onHostClosed(listener: () => void): void;
  /** Flushes pending writes and closes this side. */
  close(): Promise<void>;
}

export interface StackFrame {
  /** Absolute path (file:// URLs are converted). */
  file: string;
  line: number;
  column: number;
}

export declare function parseStackFrames(stack: string | undefined): StackFrame[];
/** A stack trace without the KiCI runtime's and Node's internal frames. */
export declare function userStack(stack: string): string;
