// The `execute` request: run one job of one workflow and report it over IPC (step.start, log.line,
// step.complete, job.complete), following sdk/PROTOCOL.md: prepare (import; for a generated job
// also the re-run of its generator, see dynamic.js; the job env and environments, see resolve.js),
// workflow rules, the workflow's concurrency group (concurrency.js), job rules, the job's init
// commands as their own rows (each restoring and saving its own caches around its command; a
// preset's command and cache planned by mise.js), the job's caches restored in a `cache:restore`
// row, steps in order (a step's own caches restored and saved on its own row, around its run;
// each step followed by its own onCancel and cleanup hook rows, all between the job's beforeStep
// and afterStep hook rows) with parallel groups (maxParallel window, failFast), the caches saved
// in a `cache:save` row, the job deadline, host `abort` (a forced one also stops the hooks; a
// plain one and the deadline give `$` commands the grace period), then the job's hooks and the
// workflow's as their own rows. Each row gets its own env copy, `ctx.secrets` and `$KICI_ENV` /
// `$KICI_PATH` files, undone when it ends; what it hands on to later rows (setEnv, addPath, the
// files' lines) goes into the job env they copy. What a step returns is its outputs
// (step.complete), kept for the later steps and handed on as the job's outputs; those and the
// secret outputs the rows set (`ctx.setSecretOutput`) go out with job.complete.
// Single attempts (retry, timeout, signal race) are run-step.js's job; contexts are context.js's,
// `ctx.secrets` is secrets.js's, env hand-on is env-changes.js's, masking what is sent is
// output.js's, asking the host for caches cache.js's, emitting events (`ctx.emit`) events.js's,
// what an init preset does mise.js's, checking and reading outputs outputs.js's.

import { bindResults, flattenSteps } from '@kici-dev/sdk/internal';
import { ProcessOutput, errorMessage, errorStack, userStack } from '@kici-dev/shared';
import { restoreCaches, saveCaches } from './cache.js';
import { takeTurn } from './concurrency.js';
import { blockingRule, enterJob, initCommand, mergedEnv, ruleContext, skipMessage, stepContext } from './context.js';
import { labelSelector } from './describe.js';
import { loadGeneratedJob } from './dynamic.js';
import { EnvChanges } from './env-changes.js';
import { loadJob } from './load.js';
import { misePlan } from './mise.js';
import { JobResults, checkStepOutputs } from './outputs.js';
import { resolveEnvironments, resolveJobEnv } from './resolve.js';
import { Interrupt, MAX_TIMER_MS, race, runStep } from './run-step.js';
import { SecretOutputs } from './secret-outputs.js';
import { StepSecrets } from './secrets.js';

/** Default timeout of a hook without its own `timeout` (5 minutes). */
const DEFAULT_HOOK_TIMEOUT_MS = 5 * 60 * 1000;

/** Grace between SIGTERM and SIGKILL of `$` commands on an abort or the job deadline, when the request has none. */
const DEFAULT_GRACE_PERIOD_MS = 30_000;

/**
 * @param {object} request the execute request
 * @param {{send: (message: object) => void, output: import('./output.js').OutputRouter,
 *          onAbort: (listener: (message: {force?: boolean}) => void) => () => void,
 *          onConcurrencyAck: (listener: (message: {action: string, reason?: string}) => void) => () => void,
 *          lifetime: AbortSignal, groups: import('@kici-dev/shared').ProcessGroups,
 *          caches: import('./host-requests.js').HostRequests, events: import('./host-requests.js').HostRequests}} io
 *   `onAbort` and `onConcurrencyAck` subscribe to those host messages and return how to
 *   unsubscribe; `caches` and `events` ask the host for caches (`cache.request`) and to emit
 *   events (`event.emit`)
 * @returns {Promise<object>} the job.complete message (the runner sends it)
 */
export async function executeJob(
  request,
  { send, output, onAbort, onConcurrencyAck, lifetime, groups, caches, events },
) {
  const startedAt = performance.now();
  output.maskSecrets(Object.values(request.secrets ?? {}).map((secret) => secret.value));
  const prepareLog = output.stepLog(-1);
  // Any abort stops the steps and onSuccess/onFailure; a forced one also stops onCancel/cleanup
  // and kills every `$` command at once, also those a plain abort gave their grace period.
  const abort = new AbortController();
  const force = new AbortController();
  onAbort((message) => {
    if (message.force === true) {
      force.abort(Interrupt.abort);
      groups.killAll();
    }
    abort.abort(Interrupt.abort);
  });
  // An abort or the job deadline gives `$` commands the job's grace period; other stops (a step
  // timeout, fail-fast, the end of an attempt) the registry's short one; after a forced abort, none.
  const gracePeriodMs = request.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
  const killGraceMs = (reason) => {
    if (force.signal.aborted) return 0;
    return reason === Interrupt.abort || reason === Interrupt.jobTimeout ? gracePeriodMs : undefined;
  };
  const complete = (status, fields) => {
    prepareLog.flush();
    return { type: 'job.complete', status, durationMs: elapsed(startedAt), ...fields };
  };

  let loaded;
  try {
    enterJob(request);
    loaded = await output.runIn(prepareLog, async () => {
      const { workflow, job } = request.dynamic
        ? await loadGeneratedJob(request, { output, log: prepareLog, signal: lifetime, groups })
        : await loadJob(request);
      const jobEnv = await resolveJobEnv(request, job);
      return { workflow, job, jobEnv, environments: await resolveEnvironments(request, job) };
    });
  } catch (error) {
    prepareLog.text('error', userStack(errorStack(error)));
    return complete('failed', { error: errorMessage(error), stepResults: [] });
  }
  const { workflow, job } = loaded;
  const stop = AbortSignal.any([force.signal, lifetime]);
  const run = new JobRun({ request, ...loaded, send, output, prepareLog, groups, killGraceMs, stop, caches, events });
  bindResults(run.outputs);

  // Workflow rules, the workflow's concurrency group, then job rules. None of them starts once an
  // abort arrived, and one an abort cuts short decides nothing: the abort cancels the job below.
  const prepareSignal = AbortSignal.any([abort.signal, lifetime]);
  if (!abort.signal.aborted) {
    const skipped = await run.skipByRules('workflow', workflow.rules, prepareSignal);
    if (skipped !== undefined) return complete('skipped', { stepResults: run.stepResults(), skipped });
  }
  if (!abort.signal.aborted && workflow.concurrency !== undefined) {
    const turn = await takeTurn(workflow.concurrency.group, {
      request,
      output,
      log: prepareLog,
      signal: prepareSignal,
      send,
      onAck: onConcurrencyAck,
    });
    if (turn.status !== undefined) {
      run.skipAll();
      return complete(turn.status, { stepResults: run.stepResults(), error: turn.error });
    }
  }
  if (!abort.signal.aborted) {
    const skipped = await run.skipByRules('job', job.rules, prepareSignal);
    if (skipped !== undefined) return complete('skipped', { stepResults: run.stepResults(), skipped });
  }

  const deadline = run.armDeadline(abort);
  const signal = AbortSignal.any([abort.signal, deadline.signal, lifetime]);
  await run.runInits(signal);
  await run.restoreJobCaches(signal);
  await run.runSteps(signal);
  await run.saveJobCaches(signal);

  const jobOutputs = run.outputs.message();
  const failed =
    run.failedStep !== undefined ||
    run.failedInit !== undefined ||
    run.stepHookErrors.length > 0 ||
    jobOutputs.error !== undefined ||
    deadline.signal.aborted;
  const hookErrors = await runHooks(run, { abort: abort.signal, force: force.signal, lifetime, deadline, failed });

  // An abort that arrived during the hooks cancels the job too; the deadline may have fired in them.
  const failedAfterAll = failed || hookErrors.length > 0 || deadline.signal.aborted;
  const status = abort.signal.aborted ? 'cancelled' : failedAfterAll ? 'failed' : 'success';
  const errors = [];
  if (status === 'failed' && deadline.signal.aborted) {
    errors.push(`job_timeout: job exceeded its timeout of ${deadline.timeoutMs}ms`);
  } else if (status === 'failed' && run.failedInit !== undefined) {
    errors.push(initFailure(run.failedInit));
  } else if (status === 'failed' && run.failedStep !== undefined) {
    errors.push(`Step '${run.failedStep}' failed`);
  }
  errors.push(...run.stepHookErrors, ...hookErrors);
  if (jobOutputs.error !== undefined) errors.push(jobOutputs.error);
  const fields = { stepResults: run.stepResults() };
  if (errors.length > 0) fields.error = errors.join('; ');
  if (jobOutputs.outputs !== undefined) fields.outputs = jobOutputs.outputs;
  const secretOutputs = run.secretOutputs.toMessage();
  if (secretOutputs !== undefined) fields.secretOutputs = secretOutputs;
  return complete(status, fields);
}

/**
 * Runs the hooks after the steps, the job's and then the workflow's, each set as: onSuccess or
 * onFailure (not after an abort), onCancel when an abort arrived before or during them, then
 * cleanup. Any abort stops a running onSuccess/onFailure, and so does the job deadline for the
 * job's, after which it is disarmed (it does not stop an onFailure that runs because it fired
 * already); a forced abort (or the runner's exit) stops the running hook, whichever it is, and
 * no further hook runs. Each hook's `outcome.status` is the job's when it starts (`failed` once a
 * hook before it failed or the deadline fired).
 * @returns {Promise<string[]>} `[workflow ]<kind> hook failed: <message>` for every hook that
 *   failed, except one the deadline stopped (the job_timeout text says it)
 */
async function runHooks(run, { abort, force, lifetime, deadline, failed }) {
  const stopped = AbortSignal.any([force, lifetime]);
  const errors = [];
  const failedSoFar = () => failed || errors.length > 0 || deadline.signal.aborted;
  // The workflow's hooks get rows of their own names (`workflow:<kind>`) and error texts.
  const runHook = async (owner, kind, signal) => {
    const hook = owner === 'job' ? run.job.hooks[kind] : run.workflow.hooks[kind];
    if (hook === undefined || stopped.aborted) return;
    const status = abort.aborted ? 'cancelled' : failedSoFar() ? 'failed' : 'success';
    const failedStep = run.failedInit?.name ?? run.failedStep;
    const name = owner === 'job' ? kind : `workflow:${kind}`;
    const result = await run.runHook(hook, { status, failedStep }, signal, name);
    const timedOut = signal.aborted && signal.reason === Interrupt.jobTimeout;
    if (result.status === 'failed' && !timedOut) {
      errors.push(`${owner === 'job' ? '' : 'workflow '}${kind} hook failed: ${result.error.message}`);
    }
  };
  const completion = () => (failedSoFar() ? 'onFailure' : 'onSuccess');
  if (!abort.aborted) {
    const limits = deadline.signal.aborted ? [abort, lifetime] : [abort, deadline.signal, lifetime];
    await runHook('job', completion(), AbortSignal.any(limits));
  }
  deadline.disarm();
  if (abort.aborted) await runHook('job', 'onCancel', stopped);
  await runHook('job', 'cleanup', stopped);
  if (!abort.aborted) await runHook('workflow', completion(), AbortSignal.any([abort, lifetime]));
  if (abort.aborted) await runHook('workflow', 'onCancel', stopped);
  await runHook('workflow', 'cleanup', stopped);
  return errors;
}

/**
 * Cache work of an init row, raced against `signal` so an abort or the job deadline does not
 * wait for the host; resolves with what `work` resolved, undefined when it was cut short.
 */
async function cacheWork(work, signal) {
  const outcome = await race(work, { parentSignal: signal });
  return outcome.value;
}

function elapsed(since) {
  return Math.round(performance.now() - since);
}

/**
 * The job error of a failed init row: `Init '<name>' failed (exit code <c>)` (or `(signal
 * <SIG>)`), else the row's own error (its timeout text, say).
 */
function initFailure({ name, error }) {
  if (error.exitCode !== undefined) return `Init '${name}' failed (exit code ${error.exitCode})`;
  if (error.signal !== undefined) return `Init '${name}' failed (signal ${error.signal})`;
  return error.message;
}

/** State of one job's execution: its rows, the results so far and how to run each part. */
class JobRun {
  /** Name of the first step that failed (continueOnError steps included). */
  failedStep = undefined;
  /** The init row that failed (`{name, error}`): no step runs then. */
  failedInit = undefined;
  /**
   * In the order they failed: `afterStep hook failed after step '<name>': <message>` for each
   * failed afterStep row, `<step> <onCancel|cleanup> hook failed: <message>` for a step's own.
   */
  stepHookErrors = [];
  #results = [];
  /** Per spec of the job's cache, whether `cache:restore` hit its exact key (no save needed). */
  #exactHits = [];

  /**
   * `killGraceMs` is the grace of the job's `$` commands by why their signal fired; `stop` fires
   * on a forced abort or at the runner's exit (no more waiting for a grace then).
   */
  constructor({
    request,
    workflow,
    job,
    jobEnv,
    environments,
    send,
    output,
    prepareLog,
    groups,
    killGraceMs,
    stop,
    caches,
    events,
  }) {
    this.request = request;
    this.workflow = workflow;
    this.job = job;
    this.send = send;
    this.output = output;
    this.prepareLog = prepareLog;
    this.groups = groups;
    this.killGraceMs = killGraceMs;
    this.stop = stop;
    this.caches = caches;
    this.events = events;
    this.env = mergedEnv(request, jobEnv);
    this.environment = environments[0];
    this.runsOn = job.runsOn.labels.map(labelSelector);
    ({ flat: this.flat, entries: this.entries } = flattenSteps(job));
    // Init rows follow the flat steps (whose indices the lock file fixes), then the two rows of
    // the job's cache (only when it has one), then the hooks.
    this.inits = (job.init ?? []).map((spec, position) => ({
      index: this.flat.length + position,
      name: `init:${position + 1}`,
      spec,
    }));
    const cacheIndex = this.flat.length + this.inits.length;
    this.cacheRows =
      job.cache === undefined
        ? []
        : [
            { index: cacheIndex, name: 'cache:restore' },
            { index: cacheIndex + 1, name: 'cache:save' },
          ];
    this.nextHookIndex = cacheIndex + this.cacheRows.length;
    this.secretOutputs = new SecretOutputs((values) => output.maskSecrets(values));
    this.outputs = new JobResults({
      workflow,
      job,
      jobName: request.jobName ?? request.job,
      flat: this.flat,
      needs: request.needs ?? {},
    });
  }

  stepResults() {
    return [...this.#results].sort((a, b) => a.stepIndex - b.stepIndex);
  }

  /** A RuleContext whose `$` output goes to the prepare log. */
  ruleContext(signal) {
    const { request, env, prepareLog: log, groups, killGraceMs } = this;
    return ruleContext({ request, env, log, signal, groups, killGraceMs });
  }

  /**
   * Evaluates the workflow's or the job's rules (`scope`) on the prepare log. When one blocks, it
   * logs why and reports every row skipped.
   * @param {'workflow' | 'job'} scope
   * @returns {Promise<{scope: string, reason: string} | undefined>} job.complete's `skipped`
   *   when a rule blocked; undefined when all passed or `signal` cut a check short
   */
  async skipByRules(scope, rules, signal) {
    const blocking = await this.output.runIn(this.prepareLog, () =>
      blockingRule(rules, { makeContext: (ruleSignal) => this.ruleContext(ruleSignal), signal }),
    );
    if (blocking === undefined || blocking.interrupted) return undefined;
    const reason = skipMessage(scope === 'workflow' ? 'Workflow' : 'Job', blocking);
    this.prepareLog.line('log', reason, 'info');
    this.skipAll();
    return { scope, reason };
  }

  /** Reports every step, init and job cache row skipped: the job ends before any of them runs. */
  skipAll() {
    for (const row of [...this.flat, ...this.inits, ...this.cacheRows]) this.skip(row);
  }

  /**
   * Arms the job deadline (jobTimeoutMs or the job's own timeout, the smaller one); it bounds the
   * init rows, the job cache rows, the steps and onSuccess/onFailure (runHooks disarms it).
   */
  armDeadline(abort) {
    const limits = [
      { timeoutMs: this.request.jobTimeoutMs, reason: 'host limit jobTimeoutMs' },
      { timeoutMs: this.job.timeout, reason: 'job option timeout' },
    ].filter((limit) => typeof limit.timeoutMs === 'number');
    const limit = limits.sort((a, b) => a.timeoutMs - b.timeoutMs)[0];
    const controller = new AbortController();
    if (limit === undefined) return { signal: controller.signal, disarm: () => {} };
    const timer = setTimeout(() => {
      if (abort.signal.aborted) return;
      this.prepareLog.line(
        'log',
        `[kici] Job exceeded its timeout of ${limit.timeoutMs}ms (${limit.reason}); aborting.`,
        'error',
      );
      controller.abort(Interrupt.jobTimeout);
    }, Math.min(limit.timeoutMs, MAX_TIMER_MS));
    return { signal: controller.signal, timeoutMs: limit.timeoutMs, disarm: () => clearTimeout(timer) };
  }

  #start(row, fields) {
    this.send({ type: 'step.start', stepIndex: row.index, stepName: row.name, ...fields });
  }

  #complete(row, result, durationMs, secretsAccessed = []) {
    const message = {
      type: 'step.complete',
      stepIndex: row.index,
      stepName: row.name,
      status: result.status,
      durationMs,
      attempts: result.attempts,
    };
    if (result.error) message.error = result.error;
    if (result.outputs !== undefined) message.outputs = result.outputs;
    if (secretsAccessed.length > 0) message.secretsAccessed = secretsAccessed;
    this.send(message);
    this.#results.push({ stepIndex: row.index, stepName: row.name, status: result.status });
    if (result.status === 'failed' && this.failedStep === undefined && row.index < this.flat.length) {
      this.failedStep = row.name;
    }
  }

  /** Reports a row that never ran (`step.complete` without `step.start`). */
  skip(row, status = 'skipped') {
    this.#complete(row, { status, attempts: 0 }, 0);
  }

  /**
   * Runs the init specs in order, each as its own row; the first that fails (or a stop) skips the
   * rest. Only a row that exited 0 hands its `$KICI_ENV` / `$KICI_PATH` on.
   */
  async runInits(signal) {
    for (const row of this.inits) {
      if (this.failedInit !== undefined || signal.aborted) {
        this.skip(row);
        continue;
      }
      this.#start(row, { stepType: 'init', state: 'running', concurrencyKind: 'sequential' });
      const result = await this.#execute(row, {
        noun: 'Init',
        ...(await this.#initWork(row)),
        makeContext: (scope) => scope,
        timeoutMs: row.spec.timeout,
        signal,
        handsOnEnvWhenFailed: false,
      });
      if (result.status === 'failed') this.failedInit = { name: row.name, error: result.error };
    }
  }

  /**
   * What an init row runs (`run`), with which env on top of the job's (`rowEnv`) and which
   * caches around it (`cache`): its spec's command, or what its preset plans (mise.js).
   */
  async #initWork(row) {
    const { spec } = row;
    if (spec.preset === undefined) {
      return { run: (scope) => this.#runInitCommand(row, spec, scope), rowEnv: spec.env, cache: spec.cache };
    }
    let plan;
    try {
      plan = await misePlan(spec, { workDir: this.request.workDir, env: this.env });
    } catch (error) {
      // A config file that cannot be read (a directory named mise.toml, say) fails the row.
      const failure = new Error(`Init '${row.name}' failed: ${errorMessage(error)}`);
      return {
        run: () => {
          throw failure;
        },
      };
    }
    if (plan.skip !== undefined) return { run: ({ log }) => log.line('log', plan.skip, 'info') };
    return {
      run: async (scope) => {
        if (plan.warning !== undefined) scope.log.line('log', plan.warning, 'warn');
        await this.#runInitCommand(row, plan, scope);
      },
      rowEnv: plan.env,
      cache: plan.cache,
    };
  }

  /** Runs an init command `{run, shell}`; a failure names it by `summary` when given, else by `run`. */
  async #runInitCommand(row, { run, shell, summary }, { env, log, signal }) {
    try {
      const { groups, killGraceMs } = this;
      await initCommand({ run, shell }, { workDir: this.request.workDir, env, log, signal, groups, killGraceMs });
    } catch (error) {
      if (error instanceof ProcessOutput) {
        if (summary === undefined) throw error;
        const { stdout, stderr, exitCode, signal: killedBy } = error;
        throw new ProcessOutput({ command: summary, stdout, stderr, exitCode, signal: killedBy });
      }
      // A spawn error (no such shell, workDir gone) says nothing about which row it was.
      throw new Error(`Init '${row.name}' failed: ${errorMessage(error)}`);
    }
  }

  /** Restores the job's caches in the `cache:restore` row; skipped after a failed init or a stop. */
  async restoreJobCaches(signal) {
    const [row] = this.cacheRows;
    if (row === undefined) return;
    if (this.failedInit !== undefined || signal.aborted) {
      this.skip(row);
      return;
    }
    await this.#runCacheRow(row, signal, async (log) => {
      this.#exactHits = await restoreCaches(this.caches, this.job.cache, log);
    });
  }

  /**
   * Saves the job's caches whose restore missed their exact key in the `cache:save` row, only
   * when the job succeeded so far (a step that failed with continueOnError counts as a failure).
   */
  async saveJobCaches(signal) {
    const row = this.cacheRows[1];
    if (row === undefined) return;
    if (this.failedInit !== undefined || this.#statusSoFar() === 'failed' || signal.aborted) {
      this.skip(row);
      return;
    }
    await this.#runCacheRow(row, signal, (log) => saveCaches(this.caches, this.job.cache, this.#exactHits, log));
  }

  /**
   * Runs a job cache row: `work(log)` raced against `signal` (abort, job deadline). It has no
   * timeout of its own: the host bounds its transfers, the job deadline the row.
   */
  async #runCacheRow(row, signal, work) {
    const startedAt = performance.now();
    this.#start(row, { stepType: 'cache', state: 'running', concurrencyKind: 'sequential' });
    const log = this.output.stepLog(row.index);
    const result = await runStep({
      noun: 'Cache',
      name: row.name,
      run: () => work(log),
      parentSignal: signal,
      output: this.output,
      log,
      makeContext: () => undefined,
    });
    log.flush();
    this.#complete(row, result, elapsed(startedAt));
  }

  /** Runs the entries in order; a failure stops the rest unless the step has continueOnError. */
  async runSteps(signal) {
    // A failed init runs no step.
    let stopped = this.failedInit !== undefined;
    for (const entry of this.entries) {
      const rows = entry.kind === 'step' ? [entry.row] : entry.children;
      if (stopped || signal.aborted) {
        for (const row of rows) this.skip(row);
        continue;
      }
      stopped =
        entry.kind === 'step'
          ? await this.#runRow(entry.row, { concurrencyKind: 'sequential' }, signal)
          : await this.#runGroup(entry, signal);
    }
  }

  /**
   * Runs one step row, then its own hooks; resolves true when it failed without continueOnError
   * or one of its hooks (its own, the job's afterStep) failed.
   */
  async #runRow(row, startFields, signal) {
    const step = row.step;
    if (step.rules.length > 0) {
      const blocking = await this.output.runIn(this.prepareLog, () =>
        blockingRule(step.rules, { makeContext: (ruleSignal) => this.ruleContext(ruleSignal), signal }),
      );
      if (blocking?.interrupted) {
        // Stopped before it started: like the steps after it (sequential) or its queued siblings.
        this.skip(row, row.group === null ? 'skipped' : 'cancelled');
        return false;
      }
      if (blocking !== undefined) {
        this.prepareLog.line('log', skipMessage(`Step '${row.name}'`, blocking), 'info');
        this.skip(row);
        return false;
      }
    }
    const failed = (result) => result.status === 'failed' && !step.continueOnError;
    const before = await this.#runStepHook('beforeStep', row, { status: this.#statusSoFar() }, signal);
    if (before?.status === 'failed') {
      // The step does not run: it fails (step.complete without step.start) with the hook's error.
      const error = { message: `beforeStep hook failed: ${before.error.message}` };
      const result = { status: 'failed', attempts: 0, error };
      this.#complete(row, result, 0);
      return failed(result);
    }
    if (before?.status === 'cancelled') {
      this.skip(row, row.group === null ? 'skipped' : 'cancelled');
      return false;
    }
    this.#start(row, { stepType: 'step', state: 'running', ...startFields });
    const result = await this.#execute(row, {
      noun: 'Step',
      run: step.run,
      timeoutMs: step.timeout ?? this.request.defaultStepTimeoutMs,
      retry: step.retry,
      retryIf: step.retryIf,
      signal,
      cache: step.cache,
      keepsOutputs: true,
    });
    const outcome = { status: result.status };
    if (result.error !== undefined) outcome.error = result.error.message;
    // The step's own hooks finish the step, so the job's afterStep sees it after them.
    const ownHookFailed = await this.#runOwnHooks(row, outcome, signal);
    const after = await this.#runStepHook('afterStep', row, outcome, signal);
    if (after?.status === 'failed') {
      // The step keeps its own status; the job fails and stops like after a failed step.
      this.stepHookErrors.push(`afterStep hook failed after step '${row.name}': ${after.error.message}`);
    }
    return ownHookFailed || after?.status === 'failed' || failed(result);
  }

  /**
   * Runs the step's own hooks after its row ended, as rows `<step>:onCancel` (only when the job's
   * abort cancelled the step) and `<step>:cleanup` (whatever its status). Like the job's onCancel
   * and cleanup, only their timeouts, a forced abort and the runner's exit stop them: they get
   * `this.stop`, not the step's `signal`, which has fired when the step was cancelled.
   * @param {{status: string, error?: string}} outcome the step's, for the hooks' `outcome`
   * @returns {Promise<boolean>} true when one failed; like a failed afterStep, that stops the job
   */
  async #runOwnHooks(row, outcome, signal) {
    const cancelledByAbort = outcome.status === 'cancelled' && signal.reason === Interrupt.abort;
    let failed = false;
    for (const kind of cancelledByAbort ? ['onCancel', 'cleanup'] : ['cleanup']) {
      const hook = row.step[kind];
      if (hook === undefined || this.stop.aborted) continue;
      const result = await this.runHook(hook, { ...outcome, step: row.name }, this.stop, `${row.name}:${kind}`);
      if (result.status === 'failed') {
        this.stepHookErrors.push(`${row.name} ${kind} hook failed: ${result.error.message}`);
        failed = true;
      }
    }
    return failed;
  }

  /** `success`, or `failed` once a row failed (a continueOnError step included). */
  #statusSoFar() {
    return this.failedStep === undefined && this.stepHookErrors.length === 0 ? 'success' : 'failed';
  }

  /**
   * Runs the job's `beforeStep` / `afterStep` hook for step `row` as its own row
   * `<kind>:<step>`, unless the job has none or `signal` fired (an abort skips them: cancel
   * runs onCancel and cleanup only). `outcome` gets the step's name.
   * @returns {Promise<object | undefined>} the hook row's result, undefined when it did not run
   */
  async #runStepHook(kind, row, outcome, signal) {
    const hook = this.job.hooks[kind];
    if (hook === undefined || signal.aborted) return undefined;
    return this.runHook(hook, { ...outcome, step: row.name }, signal, `${kind}:${row.name}`);
  }

  /** Runs a parallel group; resolves true when a child failed without continueOnError. */
  async #runGroup(entry, parentSignal) {
    const group = new AbortController();
    const signal = AbortSignal.any([parentSignal, group.signal]);
    const startFields = { concurrencyKind: 'parallel-child', groupId: entry.groupId, groupName: entry.name };
    const window = Math.min(entry.maxParallel ?? entry.children.length, entry.children.length);
    for (const row of entry.children.slice(window)) {
      this.#start(row, { stepType: 'step', state: 'pending', ...startFields });
    }
    const queue = [...entry.children];
    let failed = false;
    const worker = async () => {
      for (let row = queue.shift(); row !== undefined; row = queue.shift()) {
        if (signal.aborted) {
          this.skip(row, 'cancelled');
          continue;
        }
        if (await this.#runRow(row, startFields, signal)) {
          failed = true;
          if (entry.failFast) group.abort(Interrupt.failFast);
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return failed;
  }

  /**
   * Runs a hook (the workflow's, the job's or a step's) as its own row (`name`, else the hook
   * kind) on the next hook index.
   */
  async runHook(hook, outcome, parentSignal, name = hook.kind) {
    const row = { index: this.nextHookIndex, name };
    this.nextHookIndex += 1;
    this.#start(row, { stepType: `hook:${hook.kind}`, state: 'running', concurrencyKind: 'sequential' });
    return this.#execute(row, {
      noun: 'Step',
      run: hook.run,
      makeContext: (scope) => ({ ...this.#stepContext(scope), outcome }),
      timeoutMs: hook.timeout ?? DEFAULT_HOOK_TIMEOUT_MS,
      signal: parentSignal,
    });
  }

  /** A successful step row's returned value as its outputs, or the row failed when it is not valid outputs. */
  #keepOutputs(row, result, log) {
    if (result.status !== 'success') return result;
    const checked = checkStepOutputs(row.name, result.value, row.step.outputs);
    if (checked.error !== undefined) {
      log.line('log', checked.error, 'error');
      return { status: 'failed', attempts: result.attempts, error: { message: checked.error } };
    }
    if (checked.outputs === undefined) return result;
    this.outputs.set(row, checked.outputs);
    return { ...result, outputs: checked.outputs };
  }

  #stepContext(scope) {
    return stepContext({
      request: this.request,
      workflow: this.workflow,
      runsOn: this.runsOn,
      environment: this.environment,
      secretOutputs: this.secretOutputs,
      caches: this.caches,
      events: this.events,
      outputs: this.outputs,
      groups: this.groups,
      killGraceMs: this.killGraceMs,
      ...scope,
    });
  }

  /**
   * Runs a started row to its step.complete. `makeContext` turns the row's scope (its env,
   * ctx.secrets, setEnv / addPath, log and attempt signal) into what `run` gets (a StepContext
   * unless given). The row's env is the job env plus `rowEnv`; what it hands on reaches the job
   * env whatever its status, unless `handsOnEnvWhenFailed` is false. `cache` (an init row's or a
   * step's specs) is restored before `run` and, when it succeeded, saved after its env was
   * handed on; neither counts against `timeoutMs`, both stop when `signal` fires. With `keepsOutputs` (step
   * rows) what `run` returned becomes the row's outputs, or fails it when it cannot be.
   */
  async #execute(
    row,
    {
      noun,
      run,
      makeContext = (scope) => this.#stepContext(scope),
      timeoutMs,
      retry,
      retryIf,
      signal,
      rowEnv,
      handsOnEnvWhenFailed = true,
      cache,
      keepsOutputs = false,
    },
  ) {
    const startedAt = performance.now();
    const log = this.output.stepLog(row.index);
    // The row's own env: what it exposes (ctx.secrets) or changes does not reach the next row.
    const env = { ...this.env, ...rowEnv };
    const secrets = new StepSecrets({ secrets: this.request.secrets, env, rowName: row.name });
    const secretsApi = secrets.api();
    let changes;
    try {
      changes = await EnvChanges.open({
        jobEnv: this.env,
        env,
        workDir: this.request.workDir,
        rowName: row.name,
        isExposed: (name) => secrets.isExposed(name),
      });
    } catch (error) {
      const message = `could not create the $KICI_ENV / $KICI_PATH files: ${errorMessage(error)}`;
      log.flush();
      const result = { status: 'failed', attempts: 0, error: { message } };
      this.#complete(row, result, elapsed(startedAt));
      return result;
    }
    const envChanges = changes.api();
    const exactHits = cache === undefined ? [] : await cacheWork(() => restoreCaches(this.caches, cache, log), signal);
    const ran = await runStep({
      noun,
      name: row.name,
      run,
      timeoutMs,
      retry,
      retryIf,
      parentSignal: signal,
      output: this.output,
      log,
      makeContext: (stepSignal) => makeContext({ env, secrets: secretsApi, envChanges, log, signal: stepSignal }),
    });
    // An abort or the job deadline gives the `$` commands their grace period to exit before the
    // row ends: what they print meanwhile is still the row's, and the next row starts after them.
    if (signal.aborted && this.killGraceMs(signal.reason) !== undefined) await this.groups.stopped(this.stop);
    // Before the env hand-on and the cache save: outputs that cannot be kept fail the row.
    const result = keepsOutputs ? this.#keepOutputs(row, ran, log) : ran;
    for (const problem of await secrets.close()) {
      log.line('log', `[kici] could not remove a mounted secret file: ${problem}`, 'warn');
    }
    const handsOn = handsOnEnvWhenFailed || result.status === 'success';
    for (const warning of await changes.close({ apply: handsOn })) log.line('log', warning, 'warn');
    if (cache !== undefined && result.status === 'success') {
      await cacheWork(() => saveCaches(this.caches, cache, exactHits, log), signal);
    }
    log.flush();
    this.#complete(row, result, elapsed(startedAt), secrets.accessed);
    return result;
  }
}
