// Types of @kici-dev/sdk/internal: the runner plumbing @kici-dev/engine shares with the SDK (so
// describe, evaluate and execute agree with it). Not authoring API; authors use `@kici-dev/sdk`
// (index.d.ts). Declarations only; the implementation is internal.js.

import type {
  DynamicJob,
  EventDefinition,
  Job,
  MatrixValue,
  ParallelGroup,
  Rule,
  Step,
  StepFunction,
} from './index.js';

/** A cache spec as the SDK normalises it (`restoreKeys` left out when empty). */
export interface NormalizedCacheSpec {
  key: string;
  paths: string[];
  restoreKeys?: string[];
}

export interface FlatStep {
  index: number;
  name: string;
  step: Step;
  group: FlatGroup | null;
}

export interface FlatGroup {
  kind: 'parallel';
  name: string;
  groupId: string;
  failFast: boolean;
  maxParallel: number | undefined;
  group: ParallelGroup;
  children: FlatStep[];
}

export type FlatEntry = { kind: 'step'; row: FlatStep } | FlatGroup;

/** Step names (`step-<N>`), flat indices and group names, exactly as describe and execute use them. */
export declare function flattenSteps(job: { steps: readonly (Step | ParallelGroup)[] }): {
  entries: FlatEntry[];
  flat: FlatStep[];
};

/** Every static job of the workflow with its name (`job-<N>` for unnamed jobs; DynamicJob entries left out). */
export declare function jobNames(workflow: { jobs: readonly (Job | DynamicJob)[] }): Map<Job, string>;

/** The names of a list of jobs by position (`job-<N>` for the N-th unnamed one). */
export declare function nameJobs(jobs: readonly Job[]): string[];

/**
 * A cache spec or a list of them, validated and normalised (throws `fail(message, suggestion)`;
 * `where`, default `'cache'`, names the option in the messages). `[]` gives `[]`.
 */
export declare function normalizeCacheSpecs(
  value: unknown,
  fail: (message: string, suggestion: string) => Error,
  where?: string,
): NormalizedCacheSpec[];

/**
 * Binds what `.result` of steps and jobs reads while a job runs (one job per runner process):
 * `stepResult(ref)` for a Step or bare step function, `jobResult(ref)` for a Job.
 */
export declare function bindResults(source: {
  stepResult: (ref: Step | StepFunction<any>) => unknown;
  jobResult: (ref: Job) => unknown;
}): void;

/** True for a matrix value: a `string[]` or a `Record<string, string[]>`. */
export declare function isMatrixValue(value: unknown): value is MatrixValue;

/**
 * Goes through `rules` in order and stops at the first that `judge` does not pass (the order the
 * runner and evaluateRules share). Resolves with the blocking rule, `{interrupted: true}`, or
 * undefined when all passed.
 */
export declare function firstBlockingRule(
  rules: readonly Rule[],
  judge: (rule: Rule) => Promise<{ passed: boolean; problem?: string } | { interrupted: true }>,
): Promise<{ label: string; problem?: string } | { interrupted: true } | undefined>;

/**
 * `did you mean '<name>'? ` for a name close to one of `names` (case ignored, at most a third of
 * its letters wrong), else the empty string; meant to start a suggestion.
 */
export declare function didYouMean(word: string, names: Iterable<string>): string;

/**
 * What is wrong with an event name (`must be 1 to 128 letters, ..., got <value>`), or
 * undefined for a valid one: the rule of `defineEvent()` and `ctx.emit`.
 */
export declare function eventNameProblem(name: unknown): string | undefined;

/** True for what `defineEvent()` returns. */
export declare function isEventDefinition(value: unknown): value is EventDefinition;
