// execute, control flow: parallel groups (failFast, maxParallel pending window, per-child
// logs), continueOnError, retries, step and job timeouts (a huge one included), rules (their
// timeout and interruption in-process), hooks and host abort (also while hooks run).
// Fixtures use short timeouts (200 ms); tests wait for messages, never sleep.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const ok = async () => {};
const boom = async () => { throw new Error('boom'); };
let calls = 0;
export default workflow('flow', {
  jobs: [
    job('fail-fast', {
      runsOn: on,
      steps: [
        parallel([
          step('slow', async ({ $ }) => { await $\`sleep 30\`; }),
          step('fast', boom),
          step('queued', ok),
        ], { maxParallel: 2, name: 'checks' }),
        step('after', ok),
      ],
    }),
    job('window', {
      runsOn: on,
      steps: [parallel([
        step('one', async () => { console.log('one'); }),
        step('two', async () => { console.log('two'); }),
      ], { maxParallel: 1 })],
    }),
    job('interleaved', {
      runsOn: on,
      steps: [parallel([
        step('a', async ({ $ }) => { console.log('a1'); await $\`true\`; console.log('a2'); }),
        step('b', async ({ $ }) => { console.log('b1'); await $\`true\`; console.log('b2'); }),
      ])],
    }),
    job('continue', {
      runsOn: on,
      steps: [step('allowed', { run: boom, continueOnError: true }), step('next', ok)],
    }),
    job('retry', {
      runsOn: on,
      steps: [step('flaky', { retry: { maxAttempts: 3, delayMs: 1 }, run: async () => {
        calls += 1;
        console.log('attempt ' + calls);
        if (calls < 3) throw new Error('not yet');
      } })],
    }),
    job('retry-exhausted', {
      runsOn: on,
      steps: [step('never', { retry: { maxAttempts: 2, delayMs: 1, backoff: 'fixed' }, run: boom })],
    }),
    job('step-timeout', {
      runsOn: on,
      steps: [step('sleepy', { timeout: 200, run: async ({ $ }) => { await $\`sleep 30\`; } }), step('after', ok)],
    }),
    job('job-timeout', {
      runsOn: on,
      timeout: 200,
      steps: [step('sleepy', async ({ $ }) => { await $\`sleep 30\`; }), step('after', ok)],
    }),
    job('skipped', {
      runsOn: on,
      rules: [rule('always', () => true), skip('on push', ({ event }) => event.type === 'push'), rule('unreached', boom)],
      steps: [step('a', ok), parallel([step('b', ok)])],
    }),
    job('rule-throws', { runsOn: on, rules: [rule('broken', boom)], run: ok }),
    job('step-rule', {
      runsOn: on,
      steps: [step('maybe', { rules: [rule('never', () => false)], run: ok }), step('sure', ok)],
    }),
    job('hooks-success', {
      runsOn: on,
      steps: [step('a', ok)],
      onSuccess: onSuccess(async ({ outcome, log }) => { log.info('success hook ' + outcome.status); }),
      onFailure: onFailure(ok),
      cleanup: cleanup(async () => { console.log('cleaning'); }),
    }),
    job('hooks-failure', {
      runsOn: on,
      steps: [step('a', boom)],
      onSuccess: ok,
      onFailure: { run: async ({ outcome }) => { throw new Error('hook broke at ' + outcome.failedStep); }, timeout: 1000 },
      cleanup: ok,
    }),
    job('abortable', {
      runsOn: on,
      steps: [
        step('long', async ({ $, log }) => { log.info('started'); await $\`sleep 30\`; }),
        step('never-runs', ok),
      ],
      onSuccess: ok,
      cleanup: async () => { console.log('cleanup ran'); },
    }),
    job('matrix', { runsOn: on, matrix: ['a', 'b'], run: async ({ matrix }) => { console.log(matrix.value); } }),
    job('hook-abort', {
      runsOn: on,
      steps: [step('a', ok)],
      onSuccess: async ({ $, log }) => { log.info('in onSuccess'); await $\`sleep 30\`; },
      onCancel: async ({ outcome, log }) => { log.info('in onCancel ' + outcome.status); },
      cleanup: async ({ $, log, outcome }) => { log.info('in cleanup ' + outcome.status); await $\`sleep 30\`; },
    }),
    job('huge-timeout', { runsOn: on, timeout: 3e9, run: async ({ $ }) => { await $\`true\`; } }),
    job('hook-timeout', {
      runsOn: on,
      steps: [step('a', ok)],
      onSuccess: async ({ $, log }) => { log.info('in onSuccess'); await $\`sleep 30\`; },
      onFailure: async () => { console.log('onFailure ran'); },
      cleanup: async ({ outcome, log }) => { log.info('in cleanup ' + outcome.status); },
    }),
    job('step-then-hook-timeout', {
      runsOn: on,
      timeout: 300,
      steps: [step('sleepy', async ({ $ }) => { await $\`sleep 30\`; })],
      onFailure: async ({ outcome, log }) => { log.info('in onFailure ' + outcome.status); },
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}, onMessage) =>
  execute(project, 'fixture', { workflow: 'flow', job, ...fields }, onMessage);
const statuses = (result) => Object.fromEntries(result.completes.map((m) => [m.stepName, m.status]));

describe('execute flow', { concurrency: true }, () => {
  test('parallel failFast cancels the running sibling at once and the queued one', async () => {
    const result = await run('fail-fast');
    assert.deepEqual(statuses(result), { fast: 'failed', slow: 'cancelled', queued: 'cancelled', after: 'skipped' });
    const order = result.completes.map((m) => m.stepName);
    assert.equal(order[0], 'fast');
    assert.deepEqual(order.slice(1, 3).sort(), ['queued', 'slow']);
    assert.equal(order[3], 'after');
    const slowStart = result.starts.find((m) => m.stepName === 'slow');
    assert.deepEqual(slowStart, {
      type: 'step.start',
      stepIndex: 0,
      stepName: 'slow',
      stepType: 'step',
      state: 'running',
      concurrencyKind: 'parallel-child',
      groupId: 'g0',
      groupName: 'checks',
    });
    assert.deepEqual(
      result.starts.filter((m) => m.stepName === 'queued').map((m) => m.state),
      ['pending'],
    );
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Step 'fast' failed");
  });

  test('maxParallel keeps children pending until a slot frees up', async () => {
    const result = await run('window');
    const events = result.messages
      .filter((m) => m.type === 'step.start' || m.type === 'step.complete')
      .map((m) => `${m.type === 'step.start' ? m.state : 'complete'}:${m.stepName}`);
    assert.deepEqual(events, ['pending:two', 'running:one', 'complete:one', 'running:two', 'complete:two']);
    assert.deepEqual(result.linesOf(0), ['one']);
    assert.deepEqual(result.linesOf(1), ['two']);
  });

  test('parallel children keep their own console output', async () => {
    const result = await run('interleaved');
    assert.deepEqual(result.linesOf(0), ['a1', 'a2']);
    assert.deepEqual(result.linesOf(1), ['b1', 'b2']);
    assert.equal(result.job.status, 'success');
  });

  test('continueOnError: the job goes on and still fails', async () => {
    const result = await run('continue');
    assert.deepEqual(statuses(result), { allowed: 'failed', next: 'success' });
    assert.equal(result.step('allowed').error.message, 'boom');
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Step 'allowed' failed");
  });

  test('retry: attempts are counted and logged', async () => {
    const result = await run('retry');
    assert.equal(result.step('flaky').status, 'success');
    assert.equal(result.step('flaky').attempts, 3);
    const lines = result.logs.filter(
      (m) => m.stepIndex === 0 && (m.stream === 'stdout' || m.line.startsWith('[kici]')),
    );
    assert.deepEqual(
      lines.map((m) => m.line),
      [
        'attempt 1',
        '[kici] Attempt 1/3 failed: not yet; retrying in 1ms',
        'attempt 2',
        '[kici] Attempt 2/3 failed: not yet; retrying in 2ms',
        'attempt 3',
      ],
    );
    const exhausted = await run('retry-exhausted');
    assert.equal(exhausted.step('never').status, 'failed');
    assert.equal(exhausted.step('never').attempts, 2);
  });

  test('a step timeout fails the step with the contract text', async () => {
    const result = await run('step-timeout');
    assert.deepEqual(result.step('sleepy').error, { message: "Step 'sleepy' timed out after 200ms" });
    assert.equal(result.step('after').status, 'skipped');
    assert.equal(result.job.error, "Step 'sleepy' failed");
  });

  test('the job timeout aborts the running step and fails the job with job_timeout', async () => {
    const result = await run('job-timeout');
    assert.deepEqual(result.step('sleepy').error, { message: "Step 'sleepy' aborted: job timeout exceeded" });
    assert.equal(result.step('after').status, 'skipped');
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 200ms');
    assert.deepEqual(result.linesOf(-1), ['[kici] Job exceeded its timeout of 200ms (job option timeout); aborting.']);

    const host = await run('step-timeout', { jobTimeoutMs: 100 });
    assert.equal(host.job.error, 'job_timeout: job exceeded its timeout of 100ms');
  });

  test('the job deadline bounds onSuccess: it is aborted, the job fails with job_timeout, cleanup runs', async () => {
    const result = await run('hook-timeout', { jobTimeoutMs: 1000 });
    assert.deepEqual(
      result.completes.map((m) => [m.stepIndex, m.stepName, m.status]),
      [
        [0, 'a', 'success'],
        [1, 'onSuccess', 'failed'],
        [2, 'cleanup', 'success'],
      ],
    );
    assert.deepEqual(result.step('onSuccess').error, { message: "Step 'onSuccess' aborted: job timeout exceeded" });
    assert.deepEqual(result.linesOf(2), ['in cleanup failed']);
    assert.deepEqual(result.linesOf(-1), [
      '[kici] Job exceeded its timeout of 1000ms (host limit jobTimeoutMs); aborting.',
    ]);
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 1000ms');
  });

  test('after the deadline stopped a step, onFailure still runs (on its own timeout)', async () => {
    const result = await run('step-then-hook-timeout');
    assert.equal(result.step('onFailure').status, 'success');
    assert.deepEqual(result.linesOf(1), ['in onFailure failed']);
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 300ms');
  });

  test('job rules: the first blocking rule skips every step and the job', async () => {
    const result = await run('skipped');
    assert.equal(result.starts.length, 0);
    assert.deepEqual(
      result.completes.map((m) => [m.stepIndex, m.status]),
      [
        [0, 'skipped'],
        [1, 'skipped'],
      ],
    );
    assert.equal(result.job.status, 'skipped');
    assert.deepEqual(result.job.skipped, { scope: 'job', reason: "Job skipped by rule 'on push'" });
    assert.deepEqual(result.linesOf(-1), ["Job skipped by rule 'on push'"]);

    const thrown = await run('rule-throws');
    assert.equal(thrown.job.status, 'skipped');
    assert.deepEqual(thrown.linesOf(-1), ["Job skipped: rule 'broken' threw: boom"]);
    assert.deepEqual(thrown.job.skipped, { scope: 'job', reason: "Job skipped: rule 'broken' threw: boom" });
  });

  test('step rules skip only that step', async () => {
    const result = await run('step-rule');
    assert.deepEqual(statuses(result), { maybe: 'skipped', sure: 'success' });
    assert.deepEqual(result.linesOf(-1), ["Step 'maybe' skipped by rule 'never'"]);
    assert.equal(result.job.status, 'success');
  });

  test('hooks run after the steps as their own rows, in order', async () => {
    const success = await run('hooks-success');
    assert.deepEqual(
      success.starts.map((m) => [m.stepIndex, m.stepName, m.stepType]),
      [
        [0, 'a', 'step'],
        [1, 'onSuccess', 'hook:onSuccess'],
        [2, 'cleanup', 'hook:cleanup'],
      ],
    );
    assert.deepEqual(success.linesOf(1), ['success hook success']);
    assert.deepEqual(success.linesOf(2), ['cleaning']);
    assert.equal(success.job.status, 'success');
    assert.equal(success.job.stepResults.length, 3);

    const failure = await run('hooks-failure');
    assert.deepEqual(
      failure.completes.map((m) => [m.stepIndex, m.stepName, m.status]),
      [
        [0, 'a', 'failed'],
        [1, 'onFailure', 'failed'],
        [2, 'cleanup', 'success'],
      ],
    );
    assert.equal(failure.job.error, "Step 'a' failed; onFailure hook failed: hook broke at a");
  });

  test('matrix: ctx.matrix is the combination sent by the host', async () => {
    const result = await run('matrix', { jobName: 'matrix (b)', matrix: { value: 'b' } });
    assert.deepEqual(result.linesOf(0), ['b']);
  });

  test('abort cancels the running step, skips the rest and still runs cleanup', async () => {
    const result = await run('abortable', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.send({ type: 'abort', force: false });
    });
    assert.deepEqual(statuses(result), { long: 'cancelled', 'never-runs': 'skipped', cleanup: 'success' });
    assert.deepEqual(result.linesOf(2), ['cleanup ran']);
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.error, undefined);
    assert.equal(result.code, 0);
  });

  test('a forced abort runs no hooks', async () => {
    const result = await run('abortable', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.send({ type: 'abort', force: true });
    });
    assert.deepEqual(statuses(result), { long: 'cancelled', 'never-runs': 'skipped' });
    assert.equal(result.job.status, 'cancelled');
  });

  test('an abort during onSuccess cancels the job; a forced abort then stops cleanup at once', { timeout: 10000 }, async () => {
    const result = await run('hook-abort', {}, (message, channel) => {
      if (message.type !== 'log.line') return;
      if (message.line === 'in onSuccess') channel.send({ type: 'abort', force: false });
      if (message.line === 'in cleanup cancelled') channel.send({ type: 'abort', force: true });
    });
    assert.deepEqual(
      result.completes.map((m) => [m.stepIndex, m.stepName, m.status]),
      [
        [0, 'a', 'success'],
        [1, 'onSuccess', 'cancelled'],
        [2, 'onCancel', 'success'],
        [3, 'cleanup', 'cancelled'],
      ],
    );
    assert.deepEqual(result.linesOf(2), ['in onCancel cancelled']);
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.error, undefined);
  });

  test('a forced abort during onSuccess cancels it and runs no further hook', { timeout: 10000 }, async () => {
    const result = await run('hook-abort', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'in onSuccess') channel.send({ type: 'abort', force: true });
    });
    assert.deepEqual(statuses(result), { a: 'success', onSuccess: 'cancelled' });
    assert.equal(result.job.status, 'cancelled');
  });

  test('a job timeout beyond the largest timer delay does not fire at once', async () => {
    // Both limits (the job's 3e9 ms wins over the host's) exceed setTimeout's 2^31-1 ms.
    const result = await run('huge-timeout', { jobTimeoutMs: 4e9 });
    assert.equal(result.job.status, 'success', JSON.stringify(result.job));
  });

  test('a rule check times out (default 60000ms) and is interrupted by its signal; its $ is killed', async () => {
    const { blockingRule, skipMessage, RULE_TIMEOUT_MS } = await project.importPackage('engine/context.js');
    const { createShell } = await project.importPackage('shared/index.js');
    assert.equal(RULE_TIMEOUT_MS, 60000);
    let pending;
    const slow = { _tag: 'Rule', label: 'slow', check: ({ $ }) => (pending = $`sleep 30`) };
    const makeContext = (signal) => ({
      $: createShell({ cwd: project.root, env: process.env, signal, onLine: () => {} }),
    });
    const killed = (error) => error.signal === 'SIGTERM';

    const timedOut = await blockingRule([slow], { makeContext, signal: new AbortController().signal, timeoutMs: 50 });
    assert.equal(skipMessage('Job', timedOut), "Job skipped: rule 'slow' timed out after 50ms");
    assert.equal(skipMessage("Step 'deploy'", timedOut), "Step 'deploy' skipped: rule 'slow' timed out after 50ms");
    await assert.rejects(pending, killed);

    const controller = new AbortController();
    const checking = blockingRule([slow], { makeContext, signal: controller.signal });
    controller.abort();
    assert.deepEqual(await checking, { interrupted: true });
    await assert.rejects(pending, killed);
  });
});
