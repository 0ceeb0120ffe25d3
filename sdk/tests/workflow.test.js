// execute, what a workflow's own options do in each of its jobs: workflow rules (checked before
// the job's, skipping the job with the reason in job.complete's `skipped`), the concurrency
// group (reported to a fake host, whose acks let the job go on, make it wait or cancel it) and
// the workflow hooks (after the job's, in the order of success, failure and cancel); how
// describe and the SDK see the concurrency option.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, execute, makeProject, thrown } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { onCancel } from '@kici-dev/sdk';
const on = 'kici:os:linux';
const ok = async () => {};
const checked = (label, passes) => rule(label, () => { console.log('checked ' + label); return passes; });
const jobs = () => [
  job('build', {
    runsOn: on,
    rules: [checked('job rule', true)],
    init: { run: 'true' },
    steps: [step('a', ok), step('b', ok)],
    onCancel: onCancel(async () => { console.log('job onCancel'); }),
  }),
];
export const mainOnly = workflow('main-only', { rules: [checked('main only', false)], jobs: jobs() });
export const broken = workflow('broken', { rules: [rule('broken', () => { throw new Error('boom'); })], jobs: jobs() });
export const passing = workflow('passing', {
  rules: [checked('first', true), checked('second', true)],
  jobs: [job('build', { runsOn: on, rules: [skip('on push', ({ event }) => event.type === 'push')], run: ok })],
});
export const slow = workflow('slow', {
  rules: [rule('slow', async ({ $ }) => { console.log('checking'); await $\`sleep 30\`; return false; })],
  jobs: jobs(),
});
const deploy = [
  job('deploy', {
    runsOn: on,
    rules: [checked('job rule', true)],
    steps: [step('a', async () => { console.log('deploying'); })],
    onCancel: async () => { console.log('job onCancel'); },
    cleanup: async () => { console.log('job cleanup'); },
  }),
];
export const grouped = workflow('grouped', {
  rules: [skip('dispatch', ({ event }) => event.type === 'dispatch')],
  concurrency: {
    group: ({ branch, event }) => { console.log('group for ' + event.type); return 'deploy-' + branch; },
  },
  jobs: deploy,
});
export const queued = workflow('queued', {
  concurrency: { group: async () => 'deploy-main', cancelInProgress: false, max: 2 },
  jobs: deploy,
});
export const throwing = workflow('throwing', {
  concurrency: { group: () => { throw new Error('no branch'); } },
  jobs: deploy,
});
export const empty = workflow('empty', { concurrency: { group: () => '' }, jobs: deploy });
const said = (label) => async ({ outcome }) => { console.log(label + ' ' + outcome.status); };
const allHooks = (owner) => ({
  onSuccess: said(owner + ' onSuccess'),
  onFailure: said(owner + ' onFailure'),
  onCancel: said(owner + ' onCancel'),
  cleanup: said(owner + ' cleanup'),
});
export const hooked = workflow('hooked', {
  ...allHooks('workflow'),
  jobs: [
    job('passes', { runsOn: on, steps: [step('a', ok)], afterStep: said('afterStep'), ...allHooks('job') }),
    job('fails', { runsOn: on, steps: [step('a', async () => { throw new Error('boom'); })], ...allHooks('job') }),
    job('long', {
      runsOn: on,
      steps: [step('a', async ({ $ }) => { console.log('started'); await $\`sleep 30\`; })],
      afterStep: said('afterStep'),
      ...allHooks('job'),
    }),
    job('bare', { runsOn: on, run: ok }),
  ],
});
export const notifying = workflow('notifying', {
  onSuccess: async () => { throw new Error('notify failed'); },
  cleanup: said('workflow cleanup'),
  jobs: [job('build', { runsOn: on, run: ok, cleanup: said('job cleanup') })],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (workflow, job, fields = {}, onMessage) =>
  execute(project, 'fixture', { workflow, job, ...fields }, onMessage);
const rows = (result) => result.completes.map((m) => [m.stepIndex, m.stepName, m.status]);

describe('workflow rules', { concurrency: true }, () => {
  test('a blocking workflow rule skips the job before its own rules, every row skipped', async () => {
    const result = await run('main-only', 'build');
    assert.deepEqual(result.linesOf(-1), ['checked main only', "Workflow skipped by rule 'main only'"]);
    assert.equal(result.starts.length, 0);
    assert.deepEqual(rows(result), [
      [0, 'a', 'skipped'],
      [1, 'b', 'skipped'],
      [2, 'init:1', 'skipped'],
    ]);
    assert.equal(result.job.status, 'skipped');
    assert.deepEqual(result.job.skipped, { scope: 'workflow', reason: "Workflow skipped by rule 'main only'" });
    assert.equal(result.job.error, undefined);
  });

  test('a workflow rule that throws skips the job with the problem', async () => {
    const result = await run('broken', 'build');
    assert.deepEqual(result.linesOf(-1), ["Workflow skipped: rule 'broken' threw: boom"]);
    assert.deepEqual(result.job.skipped, { scope: 'workflow', reason: "Workflow skipped: rule 'broken' threw: boom" });
  });

  test('when every workflow rule passes the job rules decide, and a job skip says so', async () => {
    const result = await run('passing', 'build');
    assert.deepEqual(result.linesOf(-1), ['checked first', 'checked second', "Job skipped by rule 'on push'"]);
    assert.equal(result.job.status, 'skipped');
    assert.deepEqual(result.job.skipped, { scope: 'job', reason: "Job skipped by rule 'on push'" });

    const dispatched = await run('passing', 'build', { event: { type: 'dispatch' } });
    assert.equal(dispatched.job.status, 'success');
    assert.equal(dispatched.job.skipped, undefined);
  });

  test('an abort during a workflow rule cancels the job: rows skipped, onCancel runs', async () => {
    const result = await run('slow', 'build', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'checking') channel.send({ type: 'abort', force: false });
    });
    assert.deepEqual(result.linesOf(-1), ['checking']);
    assert.deepEqual(rows(result), [
      [2, 'init:1', 'skipped'],
      [0, 'a', 'skipped'],
      [1, 'b', 'skipped'],
      [3, 'onCancel', 'success'],
    ]);
    assert.deepEqual(result.linesOf(3), ['job onCancel']);
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.skipped, undefined);
  });
});

/** A host that answers each `concurrency.report` with `acks` (in order) and records the reports. */
function concurrencyHost(...acks) {
  const reports = [];
  return {
    reports,
    onMessage: (message, channel) => {
      if (message.type !== 'concurrency.report') return;
      reports.push(message);
      for (const ack of acks) channel.send({ type: 'concurrency.ack', ...ack });
    },
  };
}

const QUEUED = "Queued in concurrency group 'deploy-main'";

describe('workflow concurrency', { concurrency: true }, () => {
  test('proceed: the key is reported after the workflow rules and before the job rules', async () => {
    const host = concurrencyHost({ action: 'proceed' });
    const result = await run('grouped', 'deploy', {}, host.onMessage);
    assert.deepEqual(host.reports, [{ type: 'concurrency.report', group: 'deploy-main' }]);
    assert.deepEqual(result.linesOf(-1), ['group for push', 'checked job rule']);
    assert.deepEqual(result.linesOf(0), ['deploying']);
    assert.equal(result.job.status, 'success');

    const skipped = await run('grouped', 'deploy', { event: { type: 'dispatch' } }, host.onMessage);
    assert.equal(skipped.job.status, 'skipped');
    assert.equal(host.reports.length, 1);
  });

  test("the group function gets a pull request's head branch", async () => {
    const host = concurrencyHost({ action: 'proceed' });
    const event = { type: 'pull_request', sourceBranch: 'feature/x', targetBranch: 'main' };
    const result = await run('grouped', 'deploy', { event }, host.onMessage);
    assert.deepEqual(host.reports, [{ type: 'concurrency.report', group: 'deploy-feature/x' }]);
    assert.deepEqual(result.linesOf(-1), ['group for pull_request', 'checked job rule']);
  });

  test('wait, then proceed: the reason is on the prepare log and the job runs', async () => {
    const host = concurrencyHost({ action: 'wait', reason: QUEUED });
    const result = await run('queued', 'deploy', {}, (message, channel) => {
      host.onMessage(message, channel);
      if (message.type === 'log.line' && message.line === QUEUED) {
        channel.send({ type: 'concurrency.ack', action: 'proceed' });
      }
    });
    assert.deepEqual(
      result.logs.filter((m) => m.stepIndex === -1),
      [
        { type: 'log.line', stepIndex: -1, stream: 'log', line: QUEUED, level: 'info' },
        { type: 'log.line', stepIndex: -1, stream: 'stdout', line: 'checked job rule' },
      ],
    );
    assert.equal(result.job.status, 'success');
  });

  test('waiting past concurrencyWaitTimeoutMs fails the job, every row skipped, no hook', async () => {
    const host = concurrencyHost({ action: 'wait', reason: QUEUED });
    const result = await run('queued', 'deploy', { concurrencyWaitTimeoutMs: 200 }, host.onMessage);
    const error =
      "Timed out after 200ms waiting for a turn in concurrency group 'deploy-main' (KICI_CONCURRENCY_WAIT_TIMEOUT_MS)";
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, error);
    assert.deepEqual(result.linesOf(-1), [QUEUED, error]);
    assert.equal(result.starts.length, 0);
    assert.deepEqual(rows(result), [[0, 'a', 'skipped']]);
  });

  test('cancel: the job is cancelled with the reason, every row skipped, no hook', async () => {
    const reason = "Superseded by run in concurrency group 'deploy-main'";
    const host = concurrencyHost({ action: 'wait', reason: QUEUED }, { action: 'cancel', reason });
    const result = await run('queued', 'deploy', {}, host.onMessage);
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.error, reason);
    assert.deepEqual(rows(result), [[0, 'a', 'skipped']]);
    assert.deepEqual(result.linesOf(-1), [QUEUED]);
  });

  test('an abort while waiting cancels the job as during the rules: rows skipped, onCancel and cleanup', async () => {
    const host = concurrencyHost({ action: 'wait', reason: QUEUED });
    const result = await run('queued', 'deploy', {}, (message, channel) => {
      host.onMessage(message, channel);
      if (message.type === 'log.line' && message.line === QUEUED) channel.send({ type: 'abort', force: false });
    });
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.error, undefined);
    assert.deepEqual(rows(result), [
      [0, 'a', 'skipped'],
      [1, 'onCancel', 'success'],
      [2, 'cleanup', 'success'],
    ]);
  });

  test('a group function that throws fails the job, its stack on the prepare log', async () => {
    const host = concurrencyHost({ action: 'proceed' });
    const result = await run('throwing', 'deploy', {}, host.onMessage);
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, 'Workflow concurrency group failed: no branch');
    const [first, ...frames] = result.linesOf(-1);
    assert.equal(first, 'Workflow concurrency group failed: Error: no branch');
    assert.ok(frames.some((line) => line.includes('fixture.js')), frames.join('\n'));
    assert.deepEqual(rows(result), [[0, 'a', 'skipped']]);
    assert.deepEqual(host.reports, []);

    const empty = await run('empty', 'deploy', {}, host.onMessage);
    assert.equal(empty.job.status, 'failed');
    assert.equal(empty.job.error, "Workflow concurrency group failed: returned '' instead of a non-empty string");
    assert.deepEqual(empty.linesOf(-1), [empty.job.error]);
  });
});

describe('workflow concurrency option', () => {
  test('described as hasGroup with both settings, defaults filled in', async () => {
    const [file] = await describeModules(project, ['fixture']);
    const described = Object.fromEntries(file.workflows.map((workflow) => [workflow.name, workflow]));
    assert.deepEqual(described.grouped.concurrency, { hasGroup: true, cancelInProgress: true, max: 1 });
    assert.deepEqual(described.queued.concurrency, { hasGroup: true, cancelInProgress: false, max: 2 });
    assert.equal('concurrency' in described['main-only'], false);
    assert.deepEqual(Object.keys(described.grouped).slice(-3), ['rules', 'concurrency', 'options']);
  });

  test('the SDK checks it', async () => {
    const { workflow, job } = await project.importPackage('sdk/index.js');
    const jobs = [job('a', { runsOn: 'x', run: async () => {} })];
    const group = () => 'g';
    const check = (concurrency) => thrown(() => workflow('w', { jobs, concurrency }));
    assert.deepEqual(check('deploy'), {
      message: 'Workflow "w": concurrency must be {group, cancelInProgress?, max?}',
      suggestion: 'e.g. concurrency: { group: ({ branch }) => `deploy-${branch}`, cancelInProgress: false }',
    });
    const misspelt = check({ group, cancelInProgres: false });
    assert.equal(
      misspelt.message,
      `Workflow "w": concurrency has no option 'cancelInProgres' (use group, cancelInProgress or max)`,
    );
    assert.match(misspelt.suggestion, /^did you mean 'cancelInProgress'\? e\.g\. concurrency: /);
    assert.equal(
      check({ group: 'deploy' }).message,
      'Workflow "w": concurrency.group must be a function ({ branch, event }) => string',
    );
    assert.equal(
      check({ group, cancelInProgress: 'yes' }).message,
      'Workflow "w": concurrency.cancelInProgress must be true or false',
    );
    for (const max of [0, 1.5, '2']) {
      assert.equal(check({ group, max }).message, 'Workflow "w": concurrency.max must be an integer >= 1');
    }
  });
});

describe('workflow hooks', { concurrency: true }, () => {
  const started = (result) => result.starts.map((m) => [m.stepIndex, m.stepName, m.stepType]);
  /** What the rows printed (console output, not the stack traces the runner logs), in order. */
  const said = (result) => result.logs.filter((m) => m.stepIndex >= 0 && m.stream === 'stdout').map((m) => m.line);

  test('on success: afterStep, the job onSuccess and cleanup, then the workflow onSuccess and cleanup', async () => {
    const result = await run('hooked', 'passes');
    assert.deepEqual(started(result), [
      [0, 'a', 'step'],
      [1, 'afterStep:a', 'hook:afterStep'],
      [2, 'onSuccess', 'hook:onSuccess'],
      [3, 'cleanup', 'hook:cleanup'],
      [4, 'workflow:onSuccess', 'hook:onSuccess'],
      [5, 'workflow:cleanup', 'hook:cleanup'],
    ]);
    assert.deepEqual(said(result), [
      'afterStep success',
      'job onSuccess success',
      'job cleanup success',
      'workflow onSuccess success',
      'workflow cleanup success',
    ]);
    assert.equal(result.job.status, 'success');
    assert.equal(result.job.stepResults.length, 6);
  });

  test('on failure: the job onFailure and cleanup, then the workflow onFailure and cleanup', async () => {
    const result = await run('hooked', 'fails');
    assert.deepEqual(started(result), [
      [0, 'a', 'step'],
      [1, 'onFailure', 'hook:onFailure'],
      [2, 'cleanup', 'hook:cleanup'],
      [3, 'workflow:onFailure', 'hook:onFailure'],
      [4, 'workflow:cleanup', 'hook:cleanup'],
    ]);
    assert.deepEqual(said(result), [
      'job onFailure failed',
      'job cleanup failed',
      'workflow onFailure failed',
      'workflow cleanup failed',
    ]);
    assert.equal(result.job.error, "Step 'a' failed");
  });

  test('on cancel: the job onCancel and cleanup, then the workflow onCancel and cleanup', async () => {
    const result = await run('hooked', 'long', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.send({ type: 'abort', force: false });
    });
    assert.deepEqual(started(result), [
      [0, 'a', 'step'],
      [1, 'onCancel', 'hook:onCancel'],
      [2, 'cleanup', 'hook:cleanup'],
      [3, 'workflow:onCancel', 'hook:onCancel'],
      [4, 'workflow:cleanup', 'hook:cleanup'],
    ]);
    assert.deepEqual(said(result), [
      'started',
      'job onCancel cancelled',
      'job cleanup cancelled',
      'workflow onCancel cancelled',
      'workflow cleanup cancelled',
    ]);
    assert.equal(result.job.status, 'cancelled');
  });

  test('a job without hooks of its own runs the workflow hooks right after its steps', async () => {
    const result = await run('hooked', 'bare');
    assert.deepEqual(started(result), [
      [0, 'step-1', 'step'],
      [1, 'workflow:onSuccess', 'hook:onSuccess'],
      [2, 'workflow:cleanup', 'hook:cleanup'],
    ]);
  });

  test('a failing workflow onSuccess fails the job with its text; the cleanups still run', async () => {
    const result = await run('notifying', 'build');
    assert.deepEqual(
      result.completes.map((m) => [m.stepIndex, m.stepName, m.status]),
      [
        [0, 'step-1', 'success'],
        [1, 'cleanup', 'success'],
        [2, 'workflow:onSuccess', 'failed'],
        [3, 'workflow:cleanup', 'success'],
      ],
    );
    assert.deepEqual(said(result), ['job cleanup success', 'workflow cleanup failed']);
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, 'workflow onSuccess hook failed: notify failed');
  });
});
