// The objects user code receives: StepContext (steps and hooks), RuleContext (rules),
// DynamicMatrixContext (dynamic matrix functions) and DynamicJobContext (dynamicJob()
// generators), plus rule evaluation and the command of a job's init spec. Each context binds `$`
// and `log` to one StepLog, so output lands on the right step row, and registers its `$`
// commands in the runner's ProcessGroups, so shutdown finds them.
// It does not run steps, handle step timeouts or send step messages (execute.js and run-step.js do).

import { firstBlockingRule } from '@kici-dev/sdk/internal';
import { ProcessPromise, createLogger, createShell, errorMessage } from '@kici-dev/shared';
import { cacheApi } from './cache.js';
import { emitApi } from './events.js';
import { race } from './run-step.js';

/** How long one rule check may take (its `$` commands included) before it blocks as timed out. */
export const RULE_TIMEOUT_MS = 60_000;

/**
 * Makes the process the job's: its working directory and the host's env layer in `process.env`
 * (a runner may have been started before its job was known; one runner serves one job).
 */
export function enterJob(request) {
  process.chdir(request.workDir);
  for (const [name, value] of Object.entries(request.env ?? {})) {
    process.env[name] = String(value);
  }
}

/**
 * The environment steps, rules, matrix functions and generators see: runner env < host env
 * layer < job env layer (resolve.js's resolveJobEnv; generators have no job: omitted).
 * @param {Record<string, string>} [jobEnv]
 */
export function mergedEnv(request, jobEnv) {
  return { ...process.env, ...request.env, ...jobEnv };
}

function shellOptions({ workDir, env, signal, log, groups, killGraceMs }) {
  return {
    cwd: workDir,
    env,
    signal,
    groups,
    killGraceMs,
    flow: log,
    // Masked before the shell cuts an over-long line, not only when the log sends it.
    mask: log.mask,
    onLine: (stream, line) => log.line(stream, line),
  };
}

function shellFor(scope) {
  return createShell(shellOptions(scope));
}

/**
 * Runs the command of an init spec (`{run, shell}`) as it is, in `workDir` with the row's env;
 * its output goes to the row's log. Resolves with the ProcessOutput, rejects like `$`.
 */
export function initCommand(spec, scope) {
  return new ProcessPromise(spec.run, { ...shellOptions(scope), shell: spec.shell });
}

/**
 * The event and what every context that carries it also gives: the dispatch inputs the
 * orchestrator checked (`{}` for other events), the provider's raw payload and the provider.
 */
function eventFields(event) {
  return { event, dispatchInputs: event?.dispatchInputs ?? {}, rawPayload: event?.payload, provider: event?.provider };
}

function loggerFor(log) {
  return createLogger((level, line) => log.line('log', line, level));
}

/**
 * @param {{request: object, workflow: object, runsOn: object[], environment: string | undefined,
 *          env: Record<string, string>, secrets: object, envChanges: {setEnv: Function, addPath: Function},
 *          secretOutputs: import('./secret-outputs.js').SecretOutputs,
 *          caches: import('./host-requests.js').HostRequests, events: import('./host-requests.js').HostRequests,
 *          outputs: import('./outputs.js').JobResults, log: import('./output.js').StepLog, signal: AbortSignal,
 *          groups: import('@kici-dev/shared').ProcessGroups,
 *          killGraceMs: (reason: unknown) => number | undefined}} scope
 *   `env` is the row's own copy (ctx.secrets.expose() and ctx.setEnv() add to it), `secrets` its
 *   `ctx.secrets`, `envChanges` its `ctx.setEnv` / `ctx.addPath`, `secretOutputs` the job's,
 *   `caches` and `events` the runner's requests to the host (`ctx.cache`, `ctx.emit`), `outputs`
 *   the job's step and upstream outputs (`ctx.outputsOf`, `ctx.jobOutputs`), `killGraceMs` the
 *   grace of its `$` commands by why `signal` fired
 */
export function stepContext({
  request,
  workflow,
  runsOn,
  environment,
  env,
  secrets,
  envChanges,
  secretOutputs,
  caches,
  events,
  outputs,
  log,
  signal,
  groups,
  killGraceMs,
}) {
  return {
    $: shellFor({ workDir: request.workDir, env, signal, log, groups, killGraceMs }),
    log: loggerFor(log),
    env,
    environment,
    secrets,
    setEnv: envChanges.setEnv,
    addPath: envChanges.addPath,
    setSecretOutput: (name, value) => secretOutputs.set(name, value),
    cache: cacheApi(caches, log),
    emit: emitApi(events, log),
    matrix: request.matrix ?? undefined,
    ...eventFields(request.event),
    workflow: { name: workflow.name },
    job: { name: request.jobName ?? request.job, runsOn },
    signal,
    needs: request.needs ?? {},
    outputsOf: (ref) => outputs.outputsOf(ref),
    jobOutputs: (ref) => outputs.jobOutputs(ref),
  };
}

/** RuleContext: what `rule(label, check)` checks receive. */
export function ruleContext({ request, env, log, signal, groups, killGraceMs }) {
  return {
    ...eventFields(request.event),
    changedFiles: request.event?.changedFiles ?? [],
    env,
    needs: request.needs ?? {},
    $: shellFor({ workDir: request.workDir, env, signal, log, groups, killGraceMs }),
  };
}

/** DynamicMatrixContext: what a `matrix: async (ctx) => ...` function receives. */
export function matrixContext({ request, workflow, job, env, log, signal, groups }) {
  return {
    $: shellFor({ workDir: request.workDir, env, signal, log, groups }),
    ctx: { workflow: { name: workflow.name }, job: { name: job } },
    log: loggerFor(log),
    env,
    ...eventFields(request.event),
  };
}

/** DynamicJobContext: what a `dynamicJob()` generator receives (`needs`: the request's). */
export function dynamicJobContext({ request, workflow, env, log, signal, groups }) {
  return {
    $: shellFor({ workDir: request.workDir, env, signal, log, groups }),
    ctx: { workflow: { name: workflow.name }, ...eventFields(request.event), needs: request.needs ?? {} },
    log: loggerFor(log),
    env,
  };
}

/**
 * Evaluates rules in order and stops at the first one that does not pass. Each check gets a
 * context from `makeContext(signal)` and is raced against `timeoutMs` and `signal`; once it is
 * decided its signal fires, which kills the `$` commands it left running.
 * @param {{makeContext: (signal: AbortSignal) => object, signal: AbortSignal, timeoutMs?: number}} scope
 * @returns {Promise<{label: string, problem?: string} | {interrupted: true} | undefined>} the
 *   blocking rule (`problem` when it threw or timed out), `interrupted` when `signal` fired first
 */
export function blockingRule(rules, { makeContext, signal, timeoutMs = RULE_TIMEOUT_MS }) {
  return firstBlockingRule(rules, async (rule) => {
    const outcome = await race((ruleSignal) => rule.check(makeContext(ruleSignal)), {
      timeoutMs,
      parentSignal: signal,
    });
    switch (outcome.kind) {
      case 'value':
        return { passed: Boolean(outcome.value) };
      case 'thrown':
        return { passed: false, problem: `threw: ${errorMessage(outcome.thrown)}` };
      case 'timedOut':
        return { passed: false, problem: `timed out after ${timeoutMs}ms` };
      default:
        return { interrupted: true };
    }
  });
}

/**
 * The prepare-log line for a blocking rule, e.g. `Job skipped by rule 'main only'` or
 * `Step 'deploy' skipped: rule 'main only' threw: boom`.
 * @param {string} subject `Workflow`, `Job` or `Step '<name>'`
 */
export function skipMessage(subject, blocking) {
  return blocking.problem === undefined
    ? `${subject} skipped by rule '${blocking.label}'`
    : `${subject} skipped: rule '${blocking.label}' ${blocking.problem}`;
}
