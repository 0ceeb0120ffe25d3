// execute, what a workflow's own options do in each of its jobs: workflow rules (checked before
// the job's, skipping the job with the reason in job.complete's `skipped`).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

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
