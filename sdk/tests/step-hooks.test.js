// execute, per-step hooks and retryIf: beforeStep / afterStep rows around each step (order on
// success and on failure, the outcome they get, what a failing one does to the step and the
// job), a step's own onCancel / cleanup rows (their order against the job's and the workflow's
// hooks on success, failure and cancel, a forced abort, a failing one), hasBeforeStep /
// hasAfterStep / hasOnCancel / hasCleanup in describe, and retries decided by retryIf (true,
// false, throwing; the SDK's checks of it).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, execute, makeProject, thrown } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { beforeStep, afterStep } from '@kici-dev/sdk';
const on = 'kici:os:linux';
const ok = async () => {};
const boom = async () => { throw new Error('boom'); };
const show = ({ outcome, log }) => log.info(JSON.stringify(outcome));
let calls = 0;
const flaky = (message) => async () => { calls += 1; throw new Error(message + ' ' + calls); };
export default workflow('hooks', {
  jobs: [
    job('around', {
      runsOn: on,
      steps: [step('a', ok), step('b', ok)],
      beforeStep: beforeStep(show),
      afterStep: { run: show, timeout: 1000 },
      onSuccess: ok,
      cleanup: ok,
    }),
    job('step-fails', {
      runsOn: on,
      steps: [step('a', boom), step('b', ok)],
      beforeStep: ok,
      afterStep: afterStep(show),
      onFailure: ok,
      cleanup: ok,
    }),
    job('before-fails', {
      runsOn: on,
      steps: [step('a', async () => { console.log('a ran'); }), step('b', ok)],
      beforeStep: ({ outcome }) => { if (outcome.step === 'a') throw new Error('not ready'); },
    }),
    job('after-fails', {
      runsOn: on,
      steps: [step('a', ok), step('b', ok)],
      afterStep: () => { throw new Error('check broke'); },
      onFailure: ok,
    }),
    job('retry-if-true', {
      runsOn: on,
      steps: [step('s', { retry: { maxAttempts: 3, delayMs: 1 }, retryIf: (error, attempt) => error.message.startsWith('transient') && attempt > 0, run: flaky('transient') })],
    }),
    job('retry-if-false', {
      runsOn: on,
      steps: [step('s', { retry: { maxAttempts: 3, delayMs: 1 }, retryIf: async () => false, run: flaky('fatal') })],
    }),
    job('retry-if-throws', {
      runsOn: on,
      steps: [step('s', { retry: { maxAttempts: 3, delayMs: 1 }, retryIf: () => { throw new Error('bad predicate'); }, run: flaky('x') })],
    }),
  ],
});

const said = (who) => ({ outcome, log }) => log.info(who + ': ' + JSON.stringify(outcome));
const hooks = (who) => ({
  onSuccess: said(who + ' onSuccess'),
  onFailure: said(who + ' onFailure'),
  onCancel: said(who + ' onCancel'),
  cleanup: said(who + ' cleanup'),
});
const ownHooks = { onCancel: said('a onCancel'), cleanup: said('a cleanup') };
export const own = workflow('own-hooks', {
  ...hooks('workflow'),
  jobs: [
    job('own-success', {
      runsOn: on,
      steps: [step('a', { run: ({ log }) => log.info('a ran'), ...ownHooks }), step('b', ok)],
      ...hooks('job'),
    }),
    job('own-failure', { runsOn: on, steps: [step('a', { run: boom, ...ownHooks }), step('b', ok)], ...hooks('job') }),
    job('own-cancel', {
      runsOn: on,
      steps: [
        step('a', { run: async ({ $, log }) => { log.info('a started'); await $\`sleep 30\`; }, ...ownHooks }),
        step('b', ok),
      ],
      ...hooks('job'),
    }),
    job('own-around', {
      runsOn: on,
      steps: [step('a', { run: ok, cleanup: ok })],
      beforeStep: ok,
      afterStep: ok,
    }),
    job('own-cleanup-fails', {
      runsOn: on,
      steps: [
        step('a', { run: ok, cleanup: { run: async ({ $ }) => { await $\`sleep 30\`; }, timeout: 200 } }),
        step('b', ok),
      ],
      onFailure: said('job onFailure'),
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job) => execute(project, 'fixture', { workflow: 'hooks', job });
const rows = (result) => result.completes.map((m) => [m.stepIndex, m.stepName, m.status]);
const outcomes = (result, index) => result.linesOf(index).map((line) => JSON.parse(line));

describe('beforeStep and afterStep', { concurrency: true }, () => {
  test('on success: beforeStep, step, afterStep per step, then onSuccess and cleanup', async () => {
    const result = await run('around');
    assert.deepEqual(
      result.starts.map((m) => [m.stepIndex, m.stepName, m.stepType]),
      [
        [2, 'beforeStep:a', 'hook:beforeStep'],
        [0, 'a', 'step'],
        [3, 'afterStep:a', 'hook:afterStep'],
        [4, 'beforeStep:b', 'hook:beforeStep'],
        [1, 'b', 'step'],
        [5, 'afterStep:b', 'hook:afterStep'],
        [6, 'onSuccess', 'hook:onSuccess'],
        [7, 'cleanup', 'hook:cleanup'],
      ],
    );
    assert.deepEqual(outcomes(result, 2), [{ status: 'success', step: 'a' }]);
    assert.deepEqual(outcomes(result, 3), [{ status: 'success', step: 'a' }]);
    assert.equal(result.job.status, 'success');
  });

  test('on a failed step: afterStep gets its status and error, then onFailure and cleanup', async () => {
    const result = await run('step-fails');
    assert.deepEqual(rows(result), [
      [2, 'beforeStep:a', 'success'],
      [0, 'a', 'failed'],
      [3, 'afterStep:a', 'success'],
      [1, 'b', 'skipped'],
      [4, 'onFailure', 'success'],
      [5, 'cleanup', 'success'],
    ]);
    assert.deepEqual(outcomes(result, 3), [{ status: 'failed', error: 'boom', step: 'a' }]);
    assert.equal(result.job.error, "Step 'a' failed");
  });

  test('a failing beforeStep fails its step, which does not run', async () => {
    const result = await run('before-fails');
    assert.deepEqual(rows(result), [
      [2, 'beforeStep:a', 'failed'],
      [0, 'a', 'failed'],
      [1, 'b', 'skipped'],
    ]);
    assert.equal(result.starts.some((m) => m.stepName === 'a'), false);
    assert.deepEqual(result.step('a').error, { message: 'beforeStep hook failed: not ready' });
    assert.deepEqual(result.linesOf(0), []);
    assert.equal(result.job.error, "Step 'a' failed");
  });

  test('a failing afterStep keeps the step status but fails the job and stops the steps after it', async () => {
    const result = await run('after-fails');
    assert.deepEqual(rows(result), [
      [0, 'a', 'success'],
      [2, 'afterStep:a', 'failed'],
      [1, 'b', 'skipped'],
      [3, 'onFailure', 'success'],
    ]);
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "afterStep hook failed after step 'a': check broke");
  });
});

describe("a step's own onCancel and cleanup", { concurrency: true }, () => {
  const runOwn = (job, onMessage) => execute(project, 'fixture', { workflow: 'own-hooks', job }, onMessage);
  const said = (result) => result.logs.filter((m) => m.level === 'info').map((m) => m.line);

  test('on success: the step, its cleanup, the next step, then the job and workflow hooks', async () => {
    const result = await runOwn('own-success');
    assert.deepEqual(
      result.starts.map((m) => [m.stepIndex, m.stepName, m.stepType]),
      [
        [0, 'a', 'step'],
        [2, 'a:cleanup', 'hook:cleanup'],
        [1, 'b', 'step'],
        [3, 'onSuccess', 'hook:onSuccess'],
        [4, 'cleanup', 'hook:cleanup'],
        [5, 'workflow:onSuccess', 'hook:onSuccess'],
        [6, 'workflow:cleanup', 'hook:cleanup'],
      ],
    );
    assert.deepEqual(said(result), [
      'a ran',
      'a cleanup: {"status":"success","step":"a"}',
      'job onSuccess: {"status":"success"}',
      'job cleanup: {"status":"success"}',
      'workflow onSuccess: {"status":"success"}',
      'workflow cleanup: {"status":"success"}',
    ]);
    assert.equal(result.job.status, 'success');
  });

  test('on failure: the failed step, its cleanup (with the error), the rest skipped, then onFailure', async () => {
    const result = await runOwn('own-failure');
    assert.deepEqual(rows(result), [
      [0, 'a', 'failed'],
      [2, 'a:cleanup', 'success'],
      [1, 'b', 'skipped'],
      [3, 'onFailure', 'success'],
      [4, 'cleanup', 'success'],
      [5, 'workflow:onFailure', 'success'],
      [6, 'workflow:cleanup', 'success'],
    ]);
    assert.deepEqual(said(result), [
      'a cleanup: {"status":"failed","error":"boom","step":"a"}',
      'job onFailure: {"status":"failed","failedStep":"a"}',
      'job cleanup: {"status":"failed","failedStep":"a"}',
      'workflow onFailure: {"status":"failed","failedStep":"a"}',
      'workflow cleanup: {"status":"failed","failedStep":"a"}',
    ]);
    assert.equal(result.job.error, "Step 'a' failed");
  });

  test('on cancel: step onCancel, step cleanup, then the job and workflow onCancel and cleanup', async () => {
    const result = await runOwn('own-cancel', (message, channel) => {
      if (message.type === 'log.line' && message.line === 'a started') channel.send({ type: 'abort', force: false });
    });
    assert.deepEqual(
      result.starts.map((m) => [m.stepIndex, m.stepName, m.stepType]),
      [
        [0, 'a', 'step'],
        [2, 'a:onCancel', 'hook:onCancel'],
        [3, 'a:cleanup', 'hook:cleanup'],
        [4, 'onCancel', 'hook:onCancel'],
        [5, 'cleanup', 'hook:cleanup'],
        [6, 'workflow:onCancel', 'hook:onCancel'],
        [7, 'workflow:cleanup', 'hook:cleanup'],
      ],
    );
    assert.equal(result.step('a').status, 'cancelled');
    assert.equal(result.step('b').status, 'skipped');
    assert.deepEqual(said(result), [
      'a started',
      'a onCancel: {"status":"cancelled","step":"a"}',
      'a cleanup: {"status":"cancelled","step":"a"}',
      'job onCancel: {"status":"cancelled"}',
      'job cleanup: {"status":"cancelled"}',
      'workflow onCancel: {"status":"cancelled"}',
      'workflow cleanup: {"status":"cancelled"}',
    ]);
    assert.equal(result.job.status, 'cancelled');
  });

  test("they run between the job's beforeStep and afterStep of their step", async () => {
    const result = await runOwn('own-around');
    assert.deepEqual(
      result.starts.map((m) => m.stepName),
      ['beforeStep:a', 'a', 'a:cleanup', 'afterStep:a', 'workflow:onSuccess', 'workflow:cleanup'],
    );
  });

  test('a forced abort runs none of them', async () => {
    const result = await runOwn('own-cancel', (message, channel) => {
      if (message.type === 'log.line' && message.line === 'a started') channel.send({ type: 'abort', force: true });
    });
    assert.deepEqual(rows(result), [
      [0, 'a', 'cancelled'],
      [1, 'b', 'skipped'],
    ]);
    assert.equal(result.job.status, 'cancelled');
  });

  test('a failing step cleanup (here its own timeout) fails the job and stops the steps after it', async () => {
    const result = await runOwn('own-cleanup-fails');
    assert.deepEqual(rows(result), [
      [0, 'a', 'success'],
      [2, 'a:cleanup', 'failed'],
      [1, 'b', 'skipped'],
      [3, 'onFailure', 'success'],
      [4, 'workflow:onFailure', 'success'],
      [5, 'workflow:cleanup', 'success'],
    ]);
    assert.deepEqual(result.step('a:cleanup').error, { message: "Step 'a:cleanup' timed out after 200ms" });
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "a cleanup hook failed: Step 'a:cleanup' timed out after 200ms");
  });
});

describe('retryIf', { concurrency: true }, () => {
  test('true: retried until the attempts run out', async () => {
    const result = await run('retry-if-true');
    assert.equal(result.step('s').attempts, 3);
    assert.deepEqual(result.step('s').error, { message: 'transient 3' });
  });

  test('false: no retry after the first failed attempt', async () => {
    const result = await run('retry-if-false');
    assert.equal(result.step('s').attempts, 1);
    assert.deepEqual(result.step('s').error, { message: 'fatal 1' });
  });

  test('throwing: no retry, and a [kici] warning says why', async () => {
    const result = await run('retry-if-throws');
    assert.equal(result.step('s').attempts, 1);
    const warning = result.logs.find((m) => m.stepIndex === 0 && m.line.startsWith('[kici]'));
    assert.equal(warning.line, '[kici] retryIf threw: bad predicate; not retrying');
    assert.equal(warning.level, 'warn');
  });
});

describe('described', () => {
  test('a job has hasBeforeStep / hasAfterStep only when it has the hook; retryIf is not described', async () => {
    const [file] = await describeModules(project, ['fixture']);
    const jobs = Object.fromEntries(file.workflows[0].jobs.map((entry) => [entry.name, entry]));
    assert.equal(jobs.around.hasBeforeStep, true);
    assert.equal(jobs.around.hasAfterStep, true);
    assert.equal('hasBeforeStep' in jobs['after-fails'], false);
    assert.equal(jobs['after-fails'].hasAfterStep, true);
    const [described] = jobs['retry-if-false'].steps;
    assert.deepEqual(Object.keys(described), ['name', 'hasOutputs', 'retry', 'sourceLocation']);
  });

  test('a step has hasOnCancel / hasCleanup only when it has the hook', async () => {
    const [file] = await describeModules(project, ['fixture']);
    const own = file.workflows.find((workflow) => workflow.name === 'own-hooks');
    const [withBoth, without] = own.jobs.find((job) => job.name === 'own-success').steps;
    assert.deepEqual(Object.keys(withBoth), ['name', 'hasOutputs', 'sourceLocation', 'hasOnCancel', 'hasCleanup']);
    assert.equal(withBoth.hasOnCancel, true);
    assert.equal(withBoth.hasCleanup, true);
    const cleanupOnly = own.jobs.find((job) => job.name === 'own-cleanup-fails').steps[0];
    assert.equal('hasOnCancel' in cleanupOnly, false);
    assert.equal(cleanupOnly.hasCleanup, true);
    assert.deepEqual(Object.keys(without), ['name', 'hasOutputs', 'sourceLocation']);
  });

  test('retryIf must be a function and needs retry', async () => {
    const { step } = await project.importPackage('sdk/index.js');
    const run = async () => {};
    assert.equal(
      thrown(() => step('s', { run, retry: 2, retryIf: true })).message,
      'Step "s": retryIf must be a function (error, attempt) => boolean',
    );
    const missing = thrown(() => step('s', { run, retryIf: () => true }));
    assert.equal(missing.message, 'Step "s": retryIf needs retry: it only decides whether the attempts retry gives are used');
    assert.equal(missing.suggestion, 'e.g. retry: 3, retryIf: (error) => /ECONNRESET/.test(error.message)');
  });
});
