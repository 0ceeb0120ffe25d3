// Types of @kici-dev/engine: the request handlers runner.js dispatches to (see sdk/PROTOCOL.md
// for the message shapes). Declarations only. The runner itself is `runner.js`, started by the
// host; it has no exports.

/** Attributes stdout/stderr writes to step logs (`log.line` messages) by async context. */
export declare class OutputRouter {
  constructor(send: (message: { type: string; [key: string]: unknown }) => void);
  stepLog(stepIndex: number): StepLog;
  runIn<T>(log: StepLog, fn: () => T): T;
  /** Redirects process.stdout/stderr writes made inside `runIn`. Call once per process. */
  install(): void;
}

/** The log of one step (-1 = prepare log). */
export interface StepLog {
  readonly stepIndex: number;
  line(stream: 'stdout' | 'stderr' | 'log', line: string, level?: 'info' | 'warn' | 'error' | 'debug'): void;
  text(level: 'info' | 'warn' | 'error' | 'debug', text: string): void;
  write(stream: 'stdout' | 'stderr', chunk: string | Uint8Array): void;
  flush(): void;
}

export interface DescribeRequest {
  type: 'describe';
  root: string;
  files: { module: string; file: string }[];
}

export interface EvaluateRequest {
  type: 'evaluate';
  kind: 'matrix';
  module: string;
  file: string;
  workflow: string;
  job: string;
  workDir: string;
  root: string;
  env: Record<string, string>;
  event: unknown;
}

export interface ExecuteRequest {
  type: 'execute';
  module: string;
  file: string;
  root: string;
  workflow: string;
  job: string;
  jobName: string;
  matrix: Record<string, string> | null;
  workDir: string;
  env: Record<string, string>;
  event: unknown;
  needs: Record<string, { status: string }>;
  defaultStepTimeoutMs: number;
  jobTimeoutMs: number | null;
}

type Message = { type: string; [key: string]: unknown };

/** Answers a describe request (`describe.result`). */
export declare function describeFiles(request: DescribeRequest): Promise<Message>;

/** Answers an evaluate request (`evaluate.result`); `$` processes stop when `lifetime` fires. */
export declare function evaluateRequest(
  request: EvaluateRequest,
  io: { output: OutputRouter; lifetime: AbortSignal },
): Promise<Message>;

/** Runs a job, sending step messages through `send`; resolves with the `job.complete` message. */
export declare function executeJob(
  request: ExecuteRequest,
  io: {
    send: (message: Message) => void;
    output: OutputRouter;
    onAbort: (listener: (message: { force?: boolean }) => void) => void;
    lifetime: AbortSignal;
  },
): Promise<Message>;
