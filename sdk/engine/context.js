// The objects user code receives: StepContext (steps and hooks), RuleContext (rules) and
// DynamicMatrixContext (dynamic matrix functions), plus rule evaluation. Each context binds `$`
// and `log` to one StepLog, so output lands on the right step row.
// It does not run steps, handle timeouts or send step messages (execute.js and run-step.js do).

import { createLogger, createShell } from '@kici-dev/shared';

/** The environment steps, rules and matrix functions see: runner env < host env layer < job env. */
export function mergedEnv(request, job) {
  return { ...process.env, ...request.env, ...job.env };
}

function shellFor({ workDir, env, signal, log }) {
  return createShell({ cwd: workDir, env, signal, onLine: (stream, line) => log.line(stream, line) });
}

function loggerFor(log) {
  return createLogger((level, line) => log.line('log', line, level));
}

/**
 * @param {{request: object, workflow: object, runsOn: object[], env: Record<string, string>,
 *          log: import('./output.js').StepLog, signal: AbortSignal}} scope
 */
export function stepContext({ request, workflow, runsOn, env, log, signal }) {
  return {
    $: shellFor({ workDir: request.workDir, env, signal, log }),
    log: loggerFor(log),
    env,
    matrix: request.matrix ?? undefined,
    event: request.event,
    workflow: { name: workflow.name },
    job: { name: request.jobName ?? request.job, runsOn },
    signal,
    needs: request.needs ?? {},
  };
}

/** RuleContext: what `rule(label, check)` checks receive. */
export function ruleContext({ request, env, log, signal }) {
  return {
    event: request.event,
    changedFiles: request.event?.changedFiles ?? [],
    env,
    needs: request.needs ?? {},
    $: shellFor({ workDir: request.workDir, env, signal, log }),
  };
}

/** DynamicMatrixContext: what a `matrix: async (ctx) => ...` function receives. */
export function matrixContext({ request, workflow, job, env, log, signal }) {
  return {
    $: shellFor({ workDir: request.workDir, env, signal, log }),
    ctx: { workflow: { name: workflow.name }, job: { name: job } },
    log: loggerFor(log),
    env,
    event: request.event,
  };
}

/**
 * Evaluates rules in order and stops at the first one that does not pass.
 * @returns {Promise<{label: string, error?: string} | undefined>} the blocking rule, if any
 */
export async function blockingRule(rules, ctx) {
  for (const rule of rules) {
    try {
      if (!(await rule.check(ctx))) return { label: rule.label };
    } catch (error) {
      return { label: rule.label, error: error instanceof Error ? error.message : String(error) };
    }
  }
  return undefined;
}
