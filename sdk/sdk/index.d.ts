// Types of @kici-dev/sdk, the workflow authoring API. Declarations only; the implementation is
// in the .js modules next to this file. Runtime shapes (`_tag` values and normalised fields)
// are what @kici-dev/engine reads; authors only need the factory signatures.

import type { Logger, ProcessOutput, ProcessPromise, Shell, ShellArgument } from '@kici-dev/shared';
import { z } from './vendor/zod/index.js';

export type { Logger, ProcessOutput, ProcessPromise, Shell, ShellArgument };

/** One value or a list of them: options that take a list take a single value too. */
type OneOrMany<T> = T | readonly T[];

// ---------------------------------------------------------------------------------------------
// Errors and locations

/** Absolute file, 1-based line and column of an SDK call in the author's code. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** Thrown by the SDK while a workflow module is imported, for an invalid definition. */
export declare class KiciError extends Error {
  constructor(message: string, details?: { location?: SourceLocation; suggestion?: string; code?: string });
  readonly name: 'KiciError';
  /** The SDK call (`job(`, `step(`, ...) that was invalid. */
  readonly location: SourceLocation | undefined;
  /** What to change. */
  readonly suggestion: string | undefined;
  /** The compiler's error code when the problem has one (`E109`: not implemented by this build). */
  readonly code: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Run-time contexts

/** How a job ended, as `needs` reports it (`NeedResult.status`) and a `needs` `when` list names it. */
export type JobStatus = 'success' | 'failed' | 'skipped' | 'cancelled';

/** The normalised event that started the run. */
export interface EventEnvelope {
  type: 'push' | 'pull_request' | 'tag' | 'dispatch' | 'schedule' | (string & {});
  action?: string;
  /** Push branch, PR base branch or tag name. */
  targetBranch?: string;
  /** PR head branch. */
  sourceBranch?: string;
  sha?: string;
  provider?: string;
  changedFiles?: string[];
  /** The raw provider payload. */
  payload?: unknown;
  /**
   * A dispatched or scheduled run's inputs, as the orchestrator checked them against the
   * trigger's `inputs` (defaults filled in).
   */
  dispatchInputs?: Readonly<Record<string, DispatchInputValue>>;
}

/** The value of one dispatch or schedule input, as the orchestrator hands it on. */
export type DispatchInputValue = string | number | boolean | null;

/** What every context that carries the event also gives. */
export interface EventFields {
  /**
   * The run's dispatch or schedule inputs by name (`event.dispatchInputs`; `{}` for other
   * events). `defineDispatchInputs(...).from(ctx)` reads them typed.
   */
  dispatchInputs: Readonly<Record<string, DispatchInputValue>>;
  /** The body the provider sent (`event.payload`), as it came. */
  rawPayload: unknown;
  /** Who sent the event (`event.provider`: `'github'`, say); `undefined` when not known. */
  provider: string | undefined;
}

/** One matrix combination: `{value}` for a one-dimension matrix, else one key per dimension. */
export type MatrixCombination = Readonly<Record<string, string>>;

/** How a runsOn label was written: exact label, glob, or regular expression. */
export type LabelSelector =
  | { kind: 'exact'; value: string }
  | { kind: 'glob'; pattern: string }
  | { kind: 'regex'; source: string; flags: string };

/** Rejected by `ctx.secrets.get()` (thrown by `getMeta`, `expose`, ...) for a name the job has no secret of. */
export declare class SecretNotFoundError extends Error {
  readonly name: 'SecretNotFoundError';
  /** The name asked for. */
  readonly secretName: string;
  /** The job's secret names, sorted. */
  readonly available: readonly string[];
}

/** What `ctx.secrets.getMeta()` tells about a secret without reading its value. */
export interface SecretMeta {
  readonly name: string;
  /** Where the secret comes from (an environment, say), when the host says. */
  readonly scope: string | undefined;
}

/** Options of `ctx.secrets.mountFile()` and `exposeFile()`. */
export interface MountFileOptions {
  /** Names of the secrets whose values are written, in this order. */
  sources: readonly string[];
  /** Written between two values. Default `'\n'`. */
  divider?: string;
  /** Permission bits of the file. Default `0o600`. */
  mode?: number;
  /** File name inside its private directory. Default `secret`. */
  name?: string;
}

/**
 * `ctx.secrets`: the job's secrets. Values are never put into `env` by themselves, and every
 * value is masked (`***`) in whatever the runner sends (logs, error texts). Every name read
 * through `get`, `getMeta`, `expose`, `mountFile` and `exposeFile` is reported with the step.
 */
export interface StepSecrets {
  /** The value; rejects with SecretNotFoundError for an unknown name. */
  get(name: string): Promise<string>;
  has(name: string): boolean;
  /** The names, sorted. */
  list(): string[];
  getMeta(name: string): SecretMeta;
  /** Makes the value the env var `name` for the rest of this step (`$`, `ctx.env`, `process.env`). */
  expose(name: string): void;
  /**
   * Writes the values of `sources` (joined by `divider`) to a new file in a private directory
   * (mode 0700) and resolves with its absolute path; removed when the step ends.
   */
  mountFile(options: MountFileOptions): Promise<string>;
  /** `mountFile`, then the env var `envVar` is the file's path for the rest of this step. */
  exposeFile(envVar: string, options: MountFileOptions): Promise<string>;
}

/**
 * `ctx.cache`: restores and saves cache entries through the host (the agent packs and unpacks
 * the paths). Each call logs what happened on the calling step's log.
 */
export interface StepCache {
  /**
   * Restores the entry saved under `key`, else the newest entry whose key starts with one of
   * `restoreKeys` (tried in order). `matchedKey` is the key of the entry restored. A host that
   * could not restore logs a warning and resolves `{hit: false}`.
   */
  restore(spec: CacheSpec): Promise<{ hit: boolean; matchedKey?: string }>;
  /**
   * Saves `paths` under `key`, unless an entry has that key already (the first save wins; that
   * is logged, not an error). Rejects with the host's reason when it could not save.
   */
  save(spec: CacheSpec): Promise<void>;
}

/** The argument of every step function. */
export interface StepContext<M extends MatrixCombination | undefined = MatrixCombination | undefined>
  extends EventFields {
  /** zx-style shell in the work directory with `env`; output lines go to the step log. */
  $: Shell;
  /** Writes to the step log (`info`, `warn`, `error`, `debug`). */
  log: Logger;
  /**
   * Host env layer merged with the job env layer and what earlier steps handed on (`setEnv`,
   * `addPath`, `$KICI_ENV`, `$KICI_PATH`); also the environment of `$`. This step's own copy:
   * changing it does not reach later steps (use `setEnv`). `KICI_ENV` and `KICI_PATH` name this
   * step's fresh, empty files: `KEY=value` lines written to `$KICI_ENV` (split on the first `=`)
   * and directories written to `$KICI_PATH` (each put in front of `PATH`, the last line first)
   * reach the later steps and hooks when this step ends, not this step's own later commands.
   */
  env: Readonly<Record<string, string>>;
  /** The first of the job's environments (resolved names); `undefined` when it has none. */
  environment: string | undefined;
  secrets: StepSecrets;
  /**
   * Sets the env var `name` at once for this step's later `$` commands (`ctx.env`) and for the
   * steps and hooks that start later; not in `process.env`. Throws for a name that is not an
   * env-var name, for `KICI_*` names (set by KiCI) and for a name this step exposed with
   * `ctx.secrets`.
   */
  setEnv(name: string, value: string): void;
  /**
   * Puts `dir` in front of `PATH` at once, for this step's later `$` commands and for the steps
   * and hooks that start later (relative to the checkout root).
   */
  addPath(dir: string): void;
  /**
   * Hands a secret value on to the jobs that `needs` this one: they get it in `ctx.secrets` under
   * `name`. `name` is an env-var-style name (`[A-Za-z_][A-Za-z0-9_]*`), `value` a non-empty
   * string of at most 65536 bytes (UTF-8); at most 20 names per job (setting a name again
   * replaces its value). The value is masked (`***`) in whatever the runner sends from then on.
   * Throws on a bad name or value and past the limits.
   */
  setSecretOutput(name: string, value: string): void;
  /** Restores and saves caches explicitly (see also the job's `cache` option). */
  cache: StepCache;
  /**
   * Emits a custom event. Once the lock file is on the default branch, the workflows whose
   * `kiciEvent({ name })` trigger matches it start, with `ctx.event.payload` = `{eventName,
   * payload, sourceRepo, workflowName, runId, jobId, chainDepth}`. `name`: 1 to 128 letters,
   * digits, `.`, `_`, `:` and `-`, starting with a letter or digit; `payload` (default `{}`): a
   * plain JSON object of at most 65536 bytes serialized. Resolves once the host has queued the
   * event (it reaches the orchestrator at least once) and logs `Emitted event '<name>'` on the
   * step log; rejects with a TypeError for an invalid name or payload (nothing is sent), with
   * the host's error, or when the runner shuts down.
   */
  emit(name: string, payload?: Record<string, unknown>): Promise<void>;
  /**
   * Emits the event of a `defineEvent()` definition: `payload` is checked against its schema
   * (a mismatch rejects with a TypeError naming the issues) and what the schema parsed is sent.
   */
  emit<S extends z.ZodTypeAny>(event: EventDefinition<S>, payload: z.input<S>): Promise<void>;
  /** This job's matrix combination; `undefined` when the job has no matrix. */
  matrix: M;
  event: EventEnvelope;
  workflow: { readonly name: string };
  /** `name` is the display name (matrix children: `test (linux, 20)`). */
  job: { readonly name: string; readonly runsOn: readonly LabelSelector[] };
  /** Fires on cancel, step timeout, job timeout and parallel fail-fast. */
  signal: AbortSignal;
  /**
   * Upstream job results by job name, as the host sent them: `{status, result?}`, or for a
   * fanned-out upstream (a matrix) the ordered list of its rows `{name, status, result?}`.
   * `result` is the upstream's outputs (see `Job.result`), absent when it has none.
   */
  needs: Readonly<Record<string, NeedResult | readonly NeedRowResult[]>>;
  /**
   * What a step of this job returned (`step()` value, or the function of a bare-function step);
   * `undefined` while it has not run or when it returned nothing. Throws for a step that is not
   * in this job.
   */
  outputsOf(step: Step | StepFunction<any>): unknown;
  /**
   * The outputs of an upstream job (a job object or its name) from `needs`: its `result`, or for
   * a fanned-out upstream the list of its rows' results (`undefined` for a row without one).
   * Throws for a job that is not among this job's needs.
   */
  jobOutputs(job: Job | string): unknown;
}

/** An upstream job in `needs`. */
export interface NeedResult {
  readonly status: JobStatus;
  /** The upstream's outputs (see `Job.result`); absent when it has none. */
  readonly result?: unknown;
}

/** One row of a fanned-out upstream (a matrix child, say `test (linux)`) in `needs`. */
export interface NeedRowResult extends NeedResult {
  readonly name: string;
}

/**
 * A step body. What it returns (unless `undefined`) is the step's outputs: it must be JSON
 * (plain objects, arrays, strings, finite numbers, booleans, null; `undefined` properties are
 * dropped) of at most 1048576 bytes serialized, else the step fails.
 */
export type StepFunction<M extends MatrixCombination | undefined = MatrixCombination | undefined> = (
  ctx: StepContext<M>,
) => unknown;

/**
 * How the job went, for hooks. For `beforeStep`, `status` is the job's so far (`failed` once a
 * step failed, a `continueOnError` one included); for `afterStep` and a step's own `onCancel` /
 * `cleanup`, the step's own status.
 */
export interface HookOutcome {
  status: 'success' | 'failed' | 'cancelled';
  /** Name of the first failed step, or of the init row (`init:<n>`) that failed, if any (job hooks). */
  failedStep?: string;
  /** The step a `beforeStep` / `afterStep` hook, or a step's own `onCancel` / `cleanup`, runs for. */
  step?: string;
  /** `afterStep` and a step's own hooks, after the step failed: its error message. */
  error?: string;
}

/**
 * The argument of a hook: a StepContext plus how the job (or, for beforeStep / afterStep and a
 * step's own hooks, the step) went.
 */
export interface HookContext extends StepContext {
  outcome: HookOutcome;
}

/** The argument of rule checks. */
export interface RuleContext extends EventFields {
  event: EventEnvelope;
  changedFiles: readonly string[];
  env: Readonly<Record<string, string>>;
  needs: Readonly<Record<string, NeedResult | readonly NeedRowResult[]>>;
  $: Shell;
}

/** The argument of a dynamic matrix function (runs on an agent, in the checkout). */
export interface DynamicMatrixContext extends EventFields {
  $: Shell;
  ctx: { workflow: { readonly name: string }; job: { readonly name: string } };
  log: Logger;
  env: Readonly<Record<string, string>>;
  event: EventEnvelope;
}

/** The argument of a dynamicJob() generator (runs on an agent, in the checkout). */
export interface DynamicJobContext {
  /** zx-style shell in the work directory with `env`; output goes to the prepare log. */
  $: Shell;
  ctx: EventFields & {
    workflow: { readonly name: string };
    event: EventEnvelope;
    /** Upstream job results by job name (the host's, for the generator's `needs`; see StepContext). */
    needs: Readonly<Record<string, NeedResult | readonly NeedRowResult[]>>;
  };
  /** Writes to the prepare log. */
  log: Logger;
  /** The runner's environment and the host env layer; also the environment of `$`. */
  env: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Steps

/** A step's `retry` as the SDK normalises it: up to `maxAttempts` attempts, each bounded by the step's `timeout`. */
export interface RetryPolicy {
  /** Integer >= 1. */
  maxAttempts: number;
  /** Wait after the first failed attempt, ms (integer >= 0). Default 1000. */
  delayMs: number;
  /** `exponential` (default): `min(delayMs * 2^(n-1), maxDelayMs)` after attempt n; `fixed`: `delayMs`. */
  backoff: 'exponential' | 'fixed';
  /** ms (integer >= 0). Default 30000. */
  maxDelayMs: number;
}

/** `retry: N` is `{maxAttempts: N}` with the defaults. */
export type RetryOption = number | ({ maxAttempts: number } & Partial<Omit<RetryPolicy, 'maxAttempts'>>);

/**
 * A step's `outputs`: an object of zod schemas (`{ version: z.string() }`, checked as
 * `z.object(...)`) or a zod object schema (`z.object({...})`, refined or not).
 */
export type OutputsSchema = z.ZodRawShape | z.ZodType<Record<string, unknown>, z.ZodTypeDef, any>;

/** What a step with `outputs` `S` hands on (`stepRef.result`): the schema's parsed type; `any` without one. */
export type OutputsOf<S extends OutputsSchema | undefined> = S extends z.ZodTypeAny
  ? z.output<S>
  : S extends z.ZodRawShape
    ? z.output<z.ZodObject<S>>
    : any;

/** What a step with `outputs` `S` may return: the schema's input type; anything without one. */
export type OutputsInput<S extends OutputsSchema | undefined> = S extends z.ZodTypeAny
  ? z.input<S>
  : S extends z.ZodRawShape
    ? z.input<z.ZodObject<S>>
    : unknown;

/** The options of `step()` (`step(name, options)` takes them without `name`). */
export interface StepOptions<
  M extends MatrixCombination | undefined = MatrixCombination | undefined,
  S extends OutputsSchema | undefined = undefined,
> {
  /** Unnamed steps are `step-<N>`. */
  name?: string;
  /** With `outputs`, what it returns must match the schema. */
  run: (ctx: StepContext<M>) => OutputsInput<S> | Promise<OutputsInput<S>>;
  /** Per attempt, ms (positive integer). Default: the host's step timeout (30 min). */
  timeout?: number;
  retry?: RetryOption;
  /**
   * With `retry`: whether a failed attempt (`error` is what it threw, or an Error with the
   * timeout text; `attempt` counts from 1) is retried. A throwing retryIf means no retry.
   * Not in the lock file.
   */
  retryIf?: (error: unknown, attempt: number) => boolean | Promise<boolean>;
  /** Record the failure and go on (after the retries); the job still fails. */
  continueOnError?: boolean;
  /** The step is skipped unless every rule passes. */
  rules?: OneOrMany<Rule>;
  /**
   * Restored on the step's own row before it runs; saved there after it succeeded (not after a
   * failure, `continueOnError` included), each entry whose restore did not hit its exact `key`.
   * `[]` is no cache.
   */
  cache?: CacheSpec | readonly CacheSpec[];
  /**
   * Runs right after this step when the job was cancelled while it ran, as its own row
   * `<step>:onCancel`, before its `cleanup` and the job's hooks (not after a forced cancel).
   */
  onCancel?: HookInput;
  /**
   * Runs right after this step whatever its status (not after a forced cancel), as its own row
   * `<step>:cleanup`, before the job's `afterStep`; when it fails the job fails
   * (`<step> cleanup hook failed: <message>`) and the later steps are skipped.
   */
  cleanup?: HookInput;
  /**
   * The schema of what the step returns (`hasOutputs`), checked when the step is defined. The
   * runner checks the returned value against it (`undefined` too): on a mismatch the step fails
   * with `Step '<name>' returned outputs that do not match its schema: <where>: <issue>[; ...]`
   * and keeps no outputs; else the outputs are what the schema parsed (keys it does not name
   * dropped, defaults filled in). Types `stepRef.result`.
   */
  outputs?: S;
}

/**
 * What `step()` returns, and what a bare function in `steps` (or a job's `run`) becomes: the
 * options normalised (`retry` as a RetryPolicy, `rules` as a list), plus the `step(` call site.
 * `O` is the type of its outputs (`result`), `any` when it declares no `outputs`.
 */
export interface Step<O = any> {
  readonly _tag: 'Step';
  readonly name: string | undefined;
  readonly run: StepFunction<any>;
  readonly timeout: number | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly retryIf: ((error: unknown, attempt: number) => boolean | Promise<boolean>) | undefined;
  readonly continueOnError: boolean;
  readonly rules: readonly Rule[];
  readonly location: SourceLocation | undefined;
  /**
   * What this step returned, read inside a later step of the same job (`build.result.version`).
   * Throws `Step '<name>' has no result yet (it runs after this step, or returned nothing)`. A
   * bare function used as a step gets the same getter (`fn.result`) unless it has a `result`.
   * Typed by the step's `outputs` schema.
   */
  readonly result: O;
}

/**
 * A step: `step(name, run)`, `step(name, options)`, `step(run)` or `step(options)`. An unnamed step
 * is `step-<N>` (N counts the job's unnamed steps from 1, parallel children included). Throws
 * KiciError for invalid options (`run` not a function, a bad `timeout` or `retry`, `retryIf`
 * without `retry`, rules not made by `rule()` / `skip()`).
 */
export declare function step<M extends MatrixCombination | undefined = MatrixCombination | undefined>(
  name: string,
  run: StepFunction<M>,
): Step;
export declare function step<
  M extends MatrixCombination | undefined = MatrixCombination | undefined,
  S extends OutputsSchema | undefined = undefined,
>(name: string, options: Omit<StepOptions<M, S>, 'name'>): Step<OutputsOf<S>>;
export declare function step<M extends MatrixCombination | undefined = MatrixCombination | undefined>(
  run: StepFunction<M>,
): Step;
export declare function step<
  M extends MatrixCombination | undefined = MatrixCombination | undefined,
  S extends OutputsSchema | undefined = undefined,
>(options: StepOptions<M, S>): Step<OutputsOf<S>>;

/** The options of `parallel()`. */
export interface ParallelOptions {
  /** Cancel running siblings on the first failure. Default true. */
  failFast?: boolean;
  /** At most this many children at a time (>= 1). */
  maxParallel?: number;
  /** Default `parallel-<ordinal>`. */
  name?: string;
}

/** What `parallel()` returns; an entry of a job's `steps`. */
export interface ParallelGroup {
  readonly _tag: 'ParallelGroup';
  readonly name: string | undefined;
  readonly failFast: boolean;
  readonly maxParallel: number | undefined;
  readonly steps: readonly Step[];
  readonly location: SourceLocation | undefined;
}

/** Runs the steps concurrently behind a join barrier. Groups cannot be nested. */
export declare function parallel<M extends MatrixCombination | undefined = MatrixCombination | undefined>(
  steps: readonly (Step | StepFunction<M>)[],
  options?: ParallelOptions,
): ParallelGroup;

/** What `steps` accepts: `step()` values, `parallel()` groups and bare functions. */
export type StepInput<M extends MatrixCombination | undefined = MatrixCombination | undefined> =
  Step | ParallelGroup | StepFunction<M>;

// ---------------------------------------------------------------------------------------------
// Rules and hooks

/** A rule's check: a truthy value (or a promise of one) passes; a throw blocks. The runner gives it 60 s, its `$` commands included. */
export type RuleCheck = (ctx: RuleContext) => boolean | Promise<boolean>;

/** What `rule()` and `skip()` return; the entries of a `rules` option. */
export interface Rule {
  readonly _tag: 'Rule';
  readonly label: string;
  readonly check: RuleCheck;
}

/** Passes when `check` returns true (no check: always passes). */
export declare function rule(label: string, check?: RuleCheck): Rule;
/** Blocks when `check` returns true (no check: always blocks). */
export declare function skip(label: string, check?: RuleCheck): Rule;

/** What `evaluateRules()` resolves with: passed, or the label of the first rule that did not pass. */
export type RulesVerdict = { passed: true } | { passed: false; label: string; problem?: string };

/**
 * Evaluates rules against `ctx` in the runner's order: the first that does not pass (or throws,
 * `problem: 'threw: <message>'`) decides. `label` names what the rules guard in error texts;
 * `cb(ruleLabel, passed)` hears each verdict.
 */
export declare function evaluateRules(
  rules: OneOrMany<Rule>,
  ctx: RuleContext,
  label?: string,
  cb?: (label: string, passed: boolean) => void,
): Promise<RulesVerdict>;

/** When a hook runs; the names of the hook options and factories. */
export type HookKind = 'onSuccess' | 'onFailure' | 'cleanup' | 'onCancel' | 'beforeStep' | 'afterStep';
/** A hook body; what it returns is ignored, a throw fails the hook. */
export type HookFunction = (ctx: HookContext) => unknown;

/** What the hook factories (`onSuccess()`, ...) return; accepted wherever a HookInput is. */
export interface Hook {
  readonly _tag: 'Hook';
  readonly kind: HookKind;
  readonly run: HookFunction;
  /** ms (positive integer); default 5 minutes. */
  readonly timeout: number | undefined;
}

/** A hook as written in options: a function, `{run, timeout}`, or a hook factory's result. */
export type HookInput = HookFunction | { run: HookFunction; timeout?: number } | Hook;

/** Runs after every step succeeded. */
export declare function onSuccess(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;
/** Runs when the job failed. */
export declare function onFailure(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;
/** Runs last, whatever happened (not on a forced cancel). */
export declare function cleanup(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;
/** Runs when the job is cancelled, before cleanup. */
export declare function onCancel(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;
/**
 * Runs before each step that passed its rules, as its own row `beforeStep:<step>`; when it fails
 * the step fails (`beforeStep hook failed: <message>`) without running. Not after an abort.
 */
export declare function beforeStep(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;
/**
 * Runs after each step that ran, as its own row `afterStep:<step>`; when it fails the step keeps
 * its status, the steps after it are skipped and the job fails
 * (`afterStep hook failed after step '<step>': <message>`). Not after an abort.
 */
export declare function afterStep(input: HookFunction | { run: HookFunction; timeout?: number }): Hook;

// ---------------------------------------------------------------------------------------------
// Triggers

/** A branch or tag pattern: a glob string (leading `!` excludes) or a RegExp. */
export type BranchPattern = string | RegExp;

/** The options of `push()`; a list left out (or empty) matches everything. */
export interface PushOptions {
  branches?: OneOrMany<BranchPattern>;
  /** Also trigger on these tags (adds a `tag` trigger). */
  tags?: OneOrMany<BranchPattern>;
  /** Globs; `!` excludes. */
  paths?: OneOrMany<string>;
}

/** A pull-request action `pr({ events })` listens to; other provider actions are accepted as strings. */
export type PrEvent =
  | 'opened'
  | 'synchronize'
  | 'reopened'
  | 'closed'
  | 'edited'
  | 'labeled'
  | 'unlabeled'
  | 'ready_for_review'
  | (string & {});

/** The options of `pr()`; a list left out (or empty) matches everything, except `events`. */
export interface PrOptions {
  /** Default `['opened', 'synchronize', 'reopened', 'closed']`. */
  events?: OneOrMany<PrEvent>;
  /** Base branches. */
  target?: OneOrMany<BranchPattern>;
  /** Head branches. */
  source?: OneOrMany<BranchPattern>;
  paths?: OneOrMany<string>;
}

/** What the trigger factories return; the entries of a workflow's `on`. */
export interface Trigger {
  readonly _tag: 'Trigger';
  readonly type:
    | 'push'
    | 'pr'
    | 'tag'
    | 'dispatch'
    | 'schedule'
    | 'kici_event'
    | 'workflow_complete'
    | 'job_complete'
    | 'generic_webhook';
}

/** Runs the workflow on a push to a branch matching `branches` that changes a file matching `paths`. */
export declare function push(options?: PushOptions): Trigger;
/** Runs the workflow on a pull-request event in `events` whose base and head branches and files match. */
export declare function pr(options?: PrOptions): Trigger;
/** Runs the workflow when a tag matching one of `patterns` (any tag without them) is pushed. */
export declare function tag(options?: { patterns?: OneOrMany<BranchPattern> }): Trigger;
/**
 * The schema of one dispatch or schedule input. The orchestrator checks a run's inputs against
 * what the lock file says of them, without zod, so only this subset is accepted (anything else
 * throws KiciError when the trigger is made): `z.string()`, `z.number()`, `z.boolean()`,
 * `z.enum([...])` or `z.literal(value)` (a string, number or boolean), with `.optional()`,
 * `.nullable()`, `.default(value)`, `.min(n)` / `.max(n)` (a string's length, a number's value;
 * inclusive: not `.gt()` / `.lt()`), one `.regex(re)` without flags, `.int()` and
 * `.describe(text)`.
 */
export type DispatchInputSchema = z.ZodType<DispatchInputValue | undefined, z.ZodTypeDef, any>;

/**
 * Input schemas by input name (`[A-Za-z_][A-Za-z0-9_-]*`, at most 64 characters), at most 64
 * inputs: the `inputs` of `dispatch()` and `schedule()`, and what `defineDispatchInputs()` takes.
 */
export type DispatchInputsMap = Readonly<Record<string, DispatchInputSchema>>;

/**
 * The inputs a map of schemas gives, typed: each its schema's output (`| undefined` with
 * `.optional()` and no default, `| null` with `.nullable()`).
 */
export type DispatchInputsOf<M extends DispatchInputsMap> = { readonly [K in keyof M]: z.output<M[K]> };

/** What `defineDispatchInputs()` returns: the `inputs` of `dispatch()` / `schedule()` and their typed reader. */
export interface DispatchInputs<M extends DispatchInputsMap = DispatchInputsMap> {
  readonly _tag: 'DispatchInputs';
  /** The schemas as given. */
  readonly schema: M;
  /**
   * `ctx.dispatchInputs` (of a step, hook, rule, ... context), typed by the schemas: the types
   * hold for a run of a trigger that declares these inputs; any other run gives `{}`.
   */
  from(ctx: Pick<EventFields, 'dispatchInputs'>): DispatchInputsOf<M>;
}

/**
 * Checks the input schemas once (as `dispatch({inputs})` does; KiciError for a schema outside
 * the subset, see DispatchInputSchema) and returns a handle to pass as `inputs` and to read
 * the inputs with: `const inputs = defineDispatchInputs({ environment: z.enum(['staging',
 * 'production']).default('staging') })`, then `dispatch({ inputs })` and, in a step,
 * `inputs.from(ctx).environment`.
 */
export declare function defineDispatchInputs<M extends DispatchInputsMap>(inputs: M): DispatchInputs<M>;

/** The options of `dispatch()`. */
export interface DispatchOptions {
  /** The dispatch types (the event's `action`) that run the workflow; any without them. */
  types?: OneOrMany<string>;
  /**
   * The run's inputs, checked (defaults filled in) by the orchestrator before the run starts;
   * steps read them as `ctx.dispatchInputs`. An input without `.optional()` or `.default()`
   * must be given.
   */
  inputs?: DispatchInputsMap | DispatchInputs;
}

/** Runs the workflow on a dispatch event (`kici run local dispatch:<type>`, say) whose type is in `types` (any without them). */
export declare function dispatch(options?: DispatchOptions): Trigger;

/** The options of `schedule()`. */
export interface ScheduleOptions {
  /**
   * When to run, in `timezone`: five fields, `minute hour day-of-month month day-of-week`, of
   * digits, `*`, `,`, `-` and `/` (three-letter month and day names in their fields), or one
   * of `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, `@annually`. No seconds or year
   * field, no `@reboot`.
   */
  cron: string;
  /** An IANA time-zone name, spelt as the database does (`'Europe/Berlin'`, not `'europe/berlin'`). Default `'UTC'`. */
  timezone?: string;
  description?: string;
  /**
   * The run's inputs (`ctx.dispatchInputs`), as for `dispatch()`; each needs `.default()` or
   * `.optional()`, since nobody types a value in for a scheduled run.
   */
  inputs?: DispatchInputsMap | DispatchInputs;
}

/**
 * Runs the workflow on a schedule. Throws KiciError for a cron expression that is not five
 * fields or a nickname, a time zone Intl does not know, or an input without a default.
 */
export declare function schedule(options: ScheduleOptions): Trigger;

/**
 * What a `match` / `not` filter expects at its path: that value (a string written `/.../flags`
 * is a regular expression to the orchestrator), a RegExp (written to the lock file as
 * `/source/flags`), or a non-empty list of values of which any one will do.
 */
export type JsonPathExpected =
  | string
  | number
  | boolean
  | null
  | RegExp
  | readonly (string | number | boolean | null)[];

/**
 * A `match` / `not` filter: JSONPaths (`'$.environment'`) into the event's payload, each with
 * what it expects there. `match` fires only when every path resolves to what it expects;
 * `not` blocks when one does.
 */
export type JsonPathFilter = Readonly<Record<`$${string}`, JsonPathExpected>>;

/**
 * What `defineEvent()` returns: a custom event's name and the zod schema of its payload, for
 * `kiciEvent({ name })` and `ctx.emit(definition, payload)`.
 */
export interface EventDefinition<S extends z.ZodTypeAny = z.ZodTypeAny> {
  readonly _tag: 'EventDefinition';
  readonly name: string;
  readonly schema: S;
}

/**
 * A custom event's contract, defined once and shared by the step that emits it and the
 * workflows it starts: `const deployed = defineEvent('deploy.finished', z.object({ environment:
 * z.string() }))`, then `ctx.emit(deployed, { environment: 'production' })` (the payload typed
 * and checked against the schema) and `kiciEvent({ name: deployed })`. `name`: 1 to 128
 * letters, digits, `.`, `_`, `:` and `-`, starting with a letter or digit. Throws KiciError for
 * an invalid name or a schema that is not a zod schema.
 */
export declare function defineEvent<S extends z.ZodTypeAny>(name: string, schema: S): EventDefinition<S>;

/** The options of `kiciEvent()`. */
export interface KiciEventOptions {
  /** The event's name (what the step emitted), or its `defineEvent()` definition. */
  name: string | EventDefinition;
  match?: JsonPathFilter;
  not?: JsonPathFilter;
  /** Only events from this repository (`'acme/api'`). */
  source?: string;
}

/**
 * Runs the workflow on a custom KiCI event of that name (a step's `ctx.emit`) whose payload
 * passes `match` and `not`. The orchestrator honours it once the lock file is on the default
 * branch.
 */
export declare function kiciEvent(options: KiciEventOptions): Trigger;

/** How a workflow run ended, for `workflowComplete({ status })`. */
export type WorkflowRunStatus = 'success' | 'failed' | 'cancelled';

/** The options of `workflowComplete()`; a filter left out matches every run. */
export interface WorkflowCompleteOptions {
  /** The workflows (by name) whose runs count. */
  name?: OneOrMany<string>;
  status?: OneOrMany<WorkflowRunStatus>;
  /** Only runs of this repository (`'acme/api'`). */
  source?: string;
}

/**
 * Runs the workflow when a run of the named workflows ends with one of `status`. Without
 * `name` every workflow's runs count, this one's too. The orchestrator honours it once the
 * lock file is on the default branch.
 */
export declare function workflowComplete(options?: WorkflowCompleteOptions): Trigger;

/** The options of `jobComplete()`; a filter left out matches every job. */
export interface JobCompleteOptions {
  /** The workflows (by name) whose jobs count. */
  workflow?: OneOrMany<string>;
  /** The jobs (by name) that count. */
  job?: OneOrMany<string>;
  status?: OneOrMany<JobStatus>;
  /** Only jobs of this repository (`'acme/api'`). */
  source?: string;
}

/**
 * Runs the workflow when a job matching the filters ends. The orchestrator honours it once the
 * lock file is on the default branch.
 */
export declare function jobComplete(options?: JobCompleteOptions): Trigger;

/**
 * How a generic webhook proves where it comes from. `secret` is the NAME of the secret that
 * holds the key (`'WEBHOOK_SECRET'`: capital letters, digits and `_`), never the key itself.
 * `hmac-sha256`: the body's HMAC-SHA256 comes in `signatureHeader`; `api-key`: the key comes
 * in `header` (default `'authorization'`).
 */
export type GenericWebhookAuth =
  | { method: 'hmac-sha256'; secret: string; signatureHeader?: string }
  | { method: 'api-key'; secret: string; header?: string };

/** The options of `genericWebhook()`. */
export interface GenericWebhookOptions {
  /** The sender's name, as its webhooks carry it (`'stripe'`). */
  source: string;
  /** The event types (or actions) that count; any without them. */
  events?: OneOrMany<string>;
  match?: JsonPathFilter;
  not?: JsonPathFilter;
  auth?: GenericWebhookAuth;
  /** The path the sender posts to (`'stripe/payments'`). */
  path?: string;
}

/**
 * Runs the workflow on a webhook another service sent (not a git provider's). The orchestrator
 * honours it once the lock file is on the default branch.
 */
export declare function genericWebhook(options: GenericWebhookOptions): Trigger;

/** True when `event.type` is `type`; `'pr'` and `'pull_request'` name the same type. */
export declare function isEventType(event: EventEnvelope | undefined, type: string): boolean;

// ---------------------------------------------------------------------------------------------
// Jobs

/** One agent label in `runsOn`: a string (exact, or a glob with `* ? [ ] { }`) or a RegExp. */
export type Label = string | RegExp;

/**
 * Agent labels the job needs (all of them). A string with `* ? [ ] { }` is a glob, a RegExp a
 * regular expression, anything else an exact label.
 */
export type RunsOn =
  | OneOrMany<Label>
  | {
      labels: OneOrMany<Label>;
      /** Agents with any of these labels are not used. */
      exclude?: OneOrMany<Label>;
      /** `deterministic` (default) or `any`. */
      pick?: 'deterministic' | 'any';
    };

/**
 * Which upstream statuses let the job run: `on-success` (default: `success`), `always` (any final
 * status), `on-skip` (`success` or `skipped`), `on-failure` (`failed`, or lost as stale), or a list
 * of statuses. Otherwise the job is skipped.
 */
export type NeedsWhen = 'on-success' | 'always' | 'on-skip' | 'on-failure' | readonly JobStatus[];
/** An upstream job in `needs`: a `job()` value, its name, or `{name, when}`. */
export type NeedsEntry = Job | string | DynamicGroup | { name: Job | string; when?: NeedsWhen };

/**
 * An environment the job runs in: a name, or a function of the event that returns one (a
 * non-empty string). The orchestrator evaluates pure functions; others run in an init job on an
 * agent (60 s each).
 */
export type EnvironmentInput = string | ((event: EventEnvelope) => string | Promise<string>);

/** Values of a job env; numbers and booleans become strings. */
export type EnvValue = string | number | boolean;

/**
 * A job env computed from the event (`env: (event) => ({ DEPLOY_TARGET: 'prod' })`). The
 * orchestrator evaluates a pure function; an impure one runs in an init job on an agent (60 s).
 */
export type EnvFunction = (
  event: EventEnvelope,
) => Readonly<Record<string, EnvValue>> | Promise<Readonly<Record<string, EnvValue>>>;

/** Who may approve: one user (login) or the members of one team. */
export type ApproverClause = { readonly user: string } | { readonly team: string };

/**
 * `true` (anyone allowed to approve), a list of approvers, or the object form; `false` means no
 * approval. `timeout` is in seconds (integer >= 1). `when: 'drift'` needs check steps, which this
 * build does not implement.
 */
export type ApprovalOption =
  | boolean
  | readonly ApproverClause[]
  | { approvers?: readonly ApproverClause[]; reason?: string; timeout?: number; when?: 'always' };

/** What `normalizeApproval()` makes of an `approval` option: the lock file's `approval`. */
export interface NormalizedApproval {
  clauses: ApproverClause[];
  reason?: string;
  timeoutSeconds?: number;
  when: 'always';
}

/**
 * An `approval` option as the lock file holds it (`undefined` for `false` or none); `fail(message,
 * suggestion)` builds the error thrown for an invalid one.
 */
export declare function normalizeApproval(
  approval: unknown,
  fail: (message: string, suggestion: string, code?: string) => Error,
): NormalizedApproval | undefined;

/**
 * Narrows an entry of `ctx.needs`: true for the ordered array a fanned-out upstream (a matrix, a
 * dynamic group) gives, one `{name, status, result?}` per job; false for one `{status, result?}`.
 */
export declare function isMatrixJobOutputs(
  value: NeedResult | readonly NeedRowResult[] | undefined,
): value is readonly NeedRowResult[];

/**
 * A cache entry: the files under `paths` (relative to the checkout, or under the agent's home as
 * `~/...`; no `..`), saved under `key`. Restoring takes the entry of `key` if there is one, else
 * the newest entry whose key starts with one of `restoreKeys`, tried in order. The first save of
 * a key wins: a later save of the same key does nothing.
 */
export interface CacheSpec {
  key: string;
  paths: string | readonly string[];
  restoreKeys?: string | readonly string[];
}

/**
 * A command run before the first step as its own row `init:<n>`, at the checkout root, with the
 * job's env plus `env`. It may write `KEY=value` lines to the file `$KICI_ENV` and directories to
 * the file `$KICI_PATH`: they reach the later init commands and every step (see StepContext
 * `setEnv` / `addPath`). A non-zero exit fails the job before any step.
 */
export interface InitSpec {
  /** The command, run as `<shell> -c`. */
  run: string;
  /** Default `'bash'` (`set -euo pipefail`); `'sh'` runs with `set -eu`. */
  shell?: 'bash' | 'sh';
  /** ms (positive integer); default 600000 (10 minutes). */
  timeout?: number;
  /** Added to the job's env for this command only. */
  env?: Readonly<Record<string, string>>;
  /**
   * Restored before the command, saved after it succeeded (each entry whose restore did not hit
   * its exact `key`), e.g. the directory the command installs tools into.
   */
  cache?: CacheSpec | readonly CacheSpec[];
}

/**
 * The mise preset's options (`init: { mise: {...} }`; `init: 'mise'` takes the defaults). It
 * needs mise on the agent's PATH; it trusts the checkout's mise config files (`mise.toml`,
 * `.mise.toml`, `.tool-versions`, `.config/mise.toml`), runs `mise install` and puts the tools
 * on PATH for the later init commands and the steps, with `MISE_YES=1`.
 */
export interface MiseInitOptions {
  /** Run `mise install`; default true (false: only the tools mise has already go on PATH). */
  install?: boolean;
  /**
   * Restore mise's data dir (`~/.local/share/mise`; `$MISE_DATA_DIR` or `$XDG_DATA_HOME/mise`
   * when set and under `$HOME`) before and save it after, keyed on the config files' contents;
   * default true.
   */
  cache?: boolean;
}

/**
 * One init entry: a command, the mise preset (`'mise'` or `{ mise: {...} }`), or `'auto'`: the
 * mise preset when the checkout has a mise config file, else nothing.
 */
export type InitEntry = InitSpec | 'mise' | { mise: MiseInitOptions } | 'auto';

/** One init entry, several (run in order), or `false` for none. */
export type InitOption = InitEntry | readonly InitEntry[] | false;

/** What a dynamic matrix function returns: one dimension (a list) or several (a record of lists). */
export type MatrixValue = string[] | Record<string, string[]>;

/** Matrix values written in the workflow: one dimension (a list) or several (a record of lists). */
export type StaticMatrix = readonly string[] | Readonly<Record<string, readonly string[]>>;

/** A matrix computed on an agent before the job is expanded (60 s limit). */
export type DynamicMatrixFunction = (ctx: DynamicMatrixContext) => MatrixValue | Promise<MatrixValue>;

/** A job's `matrix`: static values or a function computed on an agent. */
export type MatrixSpec = StaticMatrix | DynamicMatrixFunction;

/**
 * The `ctx.matrix` type a matrix spec produces; `I`, the job's `include` entries, are rows as
 * written (they may bring values and keys the matrix does not have).
 */
export type MatrixOf<X, I extends Readonly<Record<string, string>> = never> = [X] extends [undefined]
  ? undefined
  : X extends readonly string[]
    ? { readonly value: X[number] } | I
    : X extends Readonly<Record<string, readonly string[]>>
      ? { readonly [K in keyof X]: X[K][number] } | I
      : MatrixCombination;

/** The options of `job()` besides `steps` / `run` (see JobOptions). */
interface JobOptionsBase<X, I> {
  /** Usually given as the first argument of `job()`; unnamed jobs are `job-<N>`. */
  name?: string;
  runsOn: RunsOn;
  needs?: OneOrMany<NeedsEntry>;
  /** The job is skipped unless every rule passes. */
  rules?: OneOrMany<Rule>;
  matrix?: X;
  /** Rows added to a static matrix (after `exclude`) unless already there. */
  include?: readonly I[];
  exclude?: readonly Record<string, string>[];
  /** The job env layer (over the host's), or a function of the event that returns it. */
  env?: Readonly<Record<string, EnvValue>> | EnvFunction;
  /** The environment whose secrets and protection rules apply. Not together with `environments`. */
  environment?: EnvironmentInput;
  /** Several environments, in order (`ctx.environment` is the first). Not together with `environment`. */
  environments?: readonly EnvironmentInput[];
  /** Hold the job until someone approves it. */
  approval?: ApprovalOption;
  /** Default true. */
  checkout?: boolean;
  /** Commands that prepare the agent before the first step (install tools, say). */
  init?: InitOption;
  /**
   * Restored (row `cache:restore`) after the init commands, before the first step; saved (row
   * `cache:save`) after the last step when every step succeeded, each entry whose restore did
   * not hit its exact `key`. `[]` is no cache.
   */
  cache?: CacheSpec | readonly CacheSpec[];
  /** Whole job, ms (positive integer). */
  timeout?: number;
  /** Seconds (integer >= 0) between SIGTERM and SIGKILL on cancel. */
  gracePeriod?: number;
  /**
   * Jobs of the repository with the same group (across runs) run one at a time, oldest first;
   * the others wait queued. A string, or a pure function of the event (the orchestrator
   * evaluates it). Default: the job's first environment, so deploys to one environment never
   * overlap.
   */
  concurrencyGroup?: string | ((event: EventEnvelope) => string);
  /** With a matrix: at most this many of its jobs (integer >= 1) queued or running at once. */
  maxParallel?: number;
  /** With a matrix: a failed matrix job cancels the others still waiting or running. Default false. */
  failFast?: boolean;
  description?: string;
  onSuccess?: HookInput;
  onFailure?: HookInput;
  cleanup?: HookInput;
  onCancel?: HookInput;
  /** Before each step (see `beforeStep()`); described as `hasBeforeStep`. */
  beforeStep?: HookInput;
  /** After each step (see `afterStep()`); described as `hasAfterStep`. */
  afterStep?: HookInput;
}

/** Either `steps` or `run` (a single step named `step-1`). */
export type JobOptions<
  X extends MatrixSpec | undefined = undefined,
  I extends Readonly<Record<string, string>> = never,
> = JobOptionsBase<X, I> &
  ({ steps: readonly StepInput<MatrixOf<X, I>>[]; run?: never } | { run: StepFunction<MatrixOf<X, I>>; steps?: never });

/** What `job()` returns; the entries of a workflow's `jobs` (and what a dynamicJob() generator returns). */
export interface Job {
  readonly _tag: 'Job';
  readonly name: string | undefined;
  readonly location: SourceLocation | undefined;
  readonly steps: readonly (Step | ParallelGroup)[];
  /**
   * This job's outputs, read inside a step of a job that `needs` it: `job.result.<step>.<field>`
   * for a `steps` job (by step name, the steps that returned something), `job.result.<field>`
   * for a `run` job; for a fanned-out job (a matrix) the list of its rows' outputs. Throws when
   * the job is not among the reading job's needs, or has no outputs.
   */
  readonly result: any;
}

/** A job whose matrix is a function: `ctx.matrix` is a combination with string values. */
export declare function job(
  name: string,
  options: JobOptions<DynamicMatrixFunction> & { matrix: DynamicMatrixFunction },
): Job;
export declare function job(options: JobOptions<DynamicMatrixFunction> & { matrix: DynamicMatrixFunction }): Job;
/** A job without a matrix (`ctx.matrix` is undefined) or with static values (typed from them). */
export declare function job<
  const X extends StaticMatrix | undefined = undefined,
  const I extends Readonly<Record<string, string>> = never,
>(name: string, options: JobOptions<X, I>): Job;
export declare function job<
  const X extends StaticMatrix | undefined = undefined,
  const I extends Readonly<Record<string, string>> = never,
>(options: JobOptions<X, I>): Job;

// ---------------------------------------------------------------------------------------------
// Dynamic jobs

/**
 * Returns the jobs to run (at most 100, distinct names; unnamed ones are `job-<N>` counting
 * within the array). Must be deterministic: it runs once to register the jobs and again on the
 * agent that executes each of them.
 */
export type DynamicJobGenerator = (ctx: DynamicJobContext) => Job[] | Promise<Job[]>;

/** The options of `dynamicJob()`. */
export interface DynamicJobOptions {
  /** A name for the generator. */
  group?: string;
  /** The generator runs once these jobs are done (same forms as a job's `needs`). */
  needs?: OneOrMany<NeedsEntry>;
  generate: DynamicJobGenerator;
}

/** A workflow `jobs` entry whose jobs are generated at run time. */
export interface DynamicJob {
  readonly _tag: 'DynamicJob';
  readonly group?: string;
  /** Normalised needs (`{target, when}`), when given. */
  readonly needs?: readonly { readonly target: Job | string; readonly when: NeedsWhen }[];
  readonly generate: DynamicJobGenerator;
  /** The `dynamicJob(` call. */
  readonly location: SourceLocation | undefined;
}

/**
 * A workflow `jobs` entry whose jobs a generator returns at run time:
 * `dynamicJob(generate)`, `dynamicJob(group, generate)`, `dynamicJob(group, {needs, generate})` or
 * `dynamicJob({group, needs, generate})`. The SDK never calls the generator; the runner does, on an agent.
 */
export declare function dynamicJob(generate: DynamicJobGenerator): DynamicJob;
export declare function dynamicJob(group: string, generate: DynamicJobGenerator): DynamicJob;
export declare function dynamicJob(group: string, options: Omit<DynamicJobOptions, 'group'>): DynamicJob;
export declare function dynamicJob(options: DynamicJobOptions): DynamicJob;

/** A `needs` entry for every job the generators of a group produced (`dynamicGroup()`). */
export interface DynamicGroup {
  readonly _tag: 'DynamicGroup';
  readonly group: string;
  readonly when?: NeedsWhen;
}

/**
 * `needs: [dynamicGroup('packages')]`: the job waits until the generators of group `packages`
 * (`dynamicJob('packages', ...)`) ran and every job they produced finished, then runs when
 * `when` (default `'on-success'`) holds for those jobs; a group that produced none satisfies it
 * at once. In the needs graph it is the node `__group:<name>`.
 */
export declare function dynamicGroup(name: string, options?: { when?: NeedsWhen }): DynamicGroup;

// ---------------------------------------------------------------------------------------------
// Workflows

/** A secret named by environment and name, `'<environment>:<name>'` (the name has no `:`). */
export type SecretRef = `${string}:${string}`;

/** An npm registry the agent authenticates to when it installs the `.kici` dependencies. */
export interface Registry {
  /** http(s) URL of the registry. */
  url: string;
  /** The npm scope it serves (`'@acme'`); without one it serves unscoped packages (one registry at most). */
  scope?: string;
  /** The secret holding the token; the lock file holds this reference, never the token. */
  tokenSecret: SecretRef;
  /** Send the token with every request. Default true. */
  alwaysAuth?: boolean;
}

/** The options of `workflow()`. */
/** What a workflow's concurrency `group` function gets. */
export interface ConcurrencyContext {
  /** The branch the run is about: a pull request's head (`sourceBranch`), else `targetBranch`. */
  branch: string | undefined;
  event: EventEnvelope;
}

/** Runs of the workflow whose `group` returns the same key are limited by the orchestrator. */
export interface WorkflowConcurrency {
  /** The group key, a non-empty string; called on the agent before the job's rules (30 s at most). */
  group: (ctx: ConcurrencyContext) => string | Promise<string>;
  /** A new run cancels the group's runs in progress (default true); false queues it instead. */
  cancelInProgress?: boolean;
  /** How many runs of the group may run at once (integer >= 1, default 1). */
  max?: number;
}

/** The options of `workflow()`. */
export interface WorkflowOptions {
  jobs: readonly (Job | DynamicJob)[];
  on?: OneOrMany<Trigger>;
  /** The whole workflow is skipped unless every rule passes. */
  rules?: OneOrMany<Rule>;
  description?: string;
  /** Repository files (globs) whose content is part of the workflow's content hash. */
  hashFiles?: OneOrMany<string>;
  /** Registries for the install of the `.kici` dependencies (no scope twice). */
  registries?: OneOrMany<Registry>;
  /** Secrets handed to that install as env vars named after them (`'ci:NPM_TOKEN'` sets NPM_TOKEN). */
  installEnv?: OneOrMany<SecretRef>;
  concurrency?: WorkflowConcurrency;
  /** Whole run, ms (positive integer). */
  timeout?: number;
  /** The workflow's hooks: every job runs them after its own (rows `workflow:<hook>`). */
  onSuccess?: HookInput;
  onFailure?: HookInput;
  cleanup?: HookInput;
  onCancel?: HookInput;
}

/**
 * What `workflow()` returns. A workflow file exports it (as `default`, in a `default` array, or
 * under any name); that is how the runner finds it.
 */
export interface Workflow {
  readonly _tag: 'Workflow';
  readonly name: string;
  readonly location: SourceLocation | undefined;
  readonly jobs: readonly (Job | DynamicJob)[];
}

/**
 * A workflow: its name (unique in the repository) and options. Throws KiciError for an empty
 * name, `jobs` that is empty or holds something other than job() / dynamicJob() values, `on`
 * entries that are not triggers, and invalid rules, hooks, registries or installEnv.
 */
export declare function workflow(name: string, options: WorkflowOptions): Workflow;

// ---------------------------------------------------------------------------------------------
// Utilities

/** zod 3 (vendored in `./vendor/zod`, see its README): schemas for step `outputs`, say. */
export { z };

/** The options of `waitFor()`; `waitForStep()` takes them with a `check` that gets the step context. */
export interface WaitForOptions<T> {
  /** Polled until it returns a truthy value, which waitFor resolves with. */
  check: () => T | false | null | undefined | 0 | '' | Promise<T | false | null | undefined | 0 | ''>;
  /** ms between checks; default 2000. */
  intervalMs?: number;
  /** ms from the call to the last check; default 60000. */
  timeoutMs?: number;
  /** ms before the first check; default 0. */
  initialDelayMs?: number;
  /** A throwing check counts as not yet (default true); false rethrows. */
  swallowErrors?: boolean;
  /** The value at the deadline instead of throwing WaitForTimeoutError. */
  onTimeout?: () => T | Promise<T>;
  /** Rejects with the signal's reason when it fires. */
  signal?: AbortSignal;
  /** `Timed out after <ms>ms waiting for <description>`; default `the condition`. */
  description?: string;
}

/** Thrown by `waitFor()` at its deadline when there is no `onTimeout`: `Timed out after <ms>ms waiting for <description>`. */
export declare class WaitForTimeoutError extends Error {
  readonly name: 'WaitForTimeoutError';
  readonly timeoutMs: number;
  /** What the last check threw, when one threw. */
  readonly lastError?: unknown;
}

/**
 * Calls `check()` until it returns a truthy value and resolves with it. Throws KiciError for
 * invalid options, WaitForTimeoutError at the deadline (unless `onTimeout`).
 */
export declare function waitFor<T>(options: WaitForOptions<T>): Promise<T>;

/**
 * A step that waits: `check` gets the step context, the step's signal stops the wait, the name
 * is the default description, and what the check returned is the step's outputs.
 */
export declare function waitForStep<T>(
  name: string,
  options: Omit<WaitForOptions<T>, 'check'> & {
    check: (ctx: StepContext) => T | false | null | undefined | 0 | '' | Promise<T | false | null | undefined | 0 | ''>;
  },
): Step;

/** A node of `validateDag()`: a name and the names it needs. */
export interface DagNode {
  name: string;
  needs?: readonly string[];
}

/** Kahn's algorithm over `needs`; `nodes` names the nodes at fault. */
export declare function validateDag(
  nodes: readonly DagNode[],
):
  | { valid: true; sortedOrder: string[] }
  | { valid: false; error: 'cycle' | 'self-reference' | 'missing-dependency'; nodes: string[] };

/** One combination `expandMatrix()` and `applyIncludeExclude()` work with. */
export type MatrixCombinationValue = Record<string, string | number | boolean>;

/** `['a']` gives `[{value: 'a'}]`; a record gives the product, first dimension outermost. */
export declare function expandMatrix(values: StaticMatrix): MatrixCombinationValue[];
/** Exclude first (all keys equal; `{}` matches nothing), then include when absent (`{}` ignored). */
export declare function applyIncludeExclude(
  combinations: readonly MatrixCombinationValue[],
  include?: readonly MatrixCombinationValue[],
  exclude?: readonly MatrixCombinationValue[],
): MatrixCombinationValue[];
/** True for an array (a one-dimension static matrix). */
export declare function isStaticArray(value: unknown): value is readonly unknown[];
/** True for a plain object, not null and not an array (a static matrix of several dimensions). */
export declare function isStaticObject(value: unknown): value is Readonly<Record<string, unknown>>;
/** True for a function (a dynamic matrix). */
export declare function isDynamicFunction(value: unknown): value is (...args: any[]) => unknown;
