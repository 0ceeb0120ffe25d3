// execute, stopping a job's commands: on a host abort or the job deadline the running `$`
// commands get SIGTERM and the request's grace period before SIGKILL, and their row ends only
// once they are gone (what they print meanwhile is still theirs, the hooks come after); a forced
// abort kills them at once, also during that grace.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { onCancel } from '@kici-dev/sdk';
const on = 'kici:os:linux';
const ok = async () => {};
const hooks = {
  onCancel: onCancel(async () => { console.log('job onCancel'); }),
  onFailure: onFailure(async () => { console.log('job onFailure'); }),
};
const trapped = step('trapped', async ({ $ }) => {
  await $\`bash -c 'trap "echo got TERM; sleep 1; echo cleaned up; exit 143" TERM; echo started; sleep 60 & wait'\`;
});
// bash only reports the TERM; its child (the only one that says 'started') ignores it.
const ignoring = 'trap "echo ignoring TERM" TERM; (trap "" TERM; echo started; exec sleep 60) & while :; do wait; done';
const stubborn = step('stubborn', async ({ $ }) => {
  await $\`bash -c \${ignoring}\`;
});
export default workflow('grace', {
  jobs: [
    job('trapped', { runsOn: on, steps: [trapped, step('never', ok)], ...hooks }),
    job('stubborn', { runsOn: on, steps: [stubborn], ...hooks }),
    job('deadline', { runsOn: on, timeout: 1000, steps: [trapped], ...hooks }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}, onMessage) =>
  execute(project, 'fixture', { workflow: 'grace', job, ...fields }, onMessage);
const rows = (result) => result.completes.map((m) => [m.stepIndex, m.stepName, m.status]);
/** Where in the message order the first message `matches` is. */
const position = (result, matches) => result.messages.findIndex(matches);

/** Sends an abort (`force`) when the log line `line` arrives. */
const abortOn = (line, force = false) => (message, channel) => {
  if (message.type === 'log.line' && message.line === line) channel.send({ type: 'abort', force });
};

describe('grace period', { concurrency: true }, () => {
  test('an abort gives the commands gracePeriodMs: they clean up, then the step ends, then onCancel', async () => {
    const result = await run('trapped', { gracePeriodMs: 3000 }, abortOn('started'));
    assert.deepEqual(result.linesOf(0), ['started', 'got TERM', 'cleaned up']);
    assert.deepEqual(rows(result), [
      [0, 'trapped', 'cancelled'],
      [1, 'never', 'skipped'],
      [2, 'onCancel', 'success'],
    ]);
    const cleanedUp = position(result, (m) => m.type === 'log.line' && m.line === 'cleaned up');
    const stepEnded = position(result, (m) => m.type === 'step.complete' && m.stepName === 'trapped');
    const onCancelStarted = position(result, (m) => m.type === 'step.start' && m.stepName === 'onCancel');
    assert.ok(cleanedUp < stepEnded && stepEnded < onCancelStarted, JSON.stringify(result.messages));
    assert.equal(result.job.status, 'cancelled');
  });

  test('commands that ignore SIGTERM are killed after gracePeriodMs; the job is still cancelled', async () => {
    let abortedAt;
    let stepEndedAt;
    const result = await run('stubborn', { gracePeriodMs: 300 }, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') {
        abortedAt = performance.now();
        channel.send({ type: 'abort', force: false });
      }
      if (message.type === 'step.complete' && message.stepName === 'stubborn') stepEndedAt = performance.now();
    });
    assert.deepEqual(result.linesOf(0), ['started', 'ignoring TERM']);
    assert.ok(stepEndedAt - abortedAt >= 300, `the step ended ${stepEndedAt - abortedAt}ms after the abort`);
    assert.deepEqual(rows(result), [
      [0, 'stubborn', 'cancelled'],
      [1, 'onCancel', 'success'],
    ]);
    assert.equal(result.job.status, 'cancelled');
  });

  test('a forced abort during the grace period kills the commands at once and runs no hook', async () => {
    let forcedAt;
    let stepEndedAt;
    const result = await run('stubborn', { gracePeriodMs: 30000 }, (message, channel) => {
      abortOn('started')(message, channel);
      if (message.type === 'log.line' && message.line === 'ignoring TERM') {
        forcedAt = performance.now();
        channel.send({ type: 'abort', force: true });
      }
      if (message.type === 'step.complete') stepEndedAt = performance.now();
    });
    assert.ok(stepEndedAt - forcedAt < 5000, `the step ended ${stepEndedAt - forcedAt}ms after the forced abort`);
    assert.deepEqual(rows(result), [[0, 'stubborn', 'cancelled']]);
    assert.equal(result.job.status, 'cancelled');
  });

  test('the job deadline gives the commands the grace period too', async () => {
    const result = await run('deadline', { gracePeriodMs: 3000 });
    assert.deepEqual(result.linesOf(0), ['started', 'got TERM', 'cleaned up']);
    const cleanedUp = position(result, (m) => m.type === 'log.line' && m.line === 'cleaned up');
    assert.ok(cleanedUp < position(result, (m) => m.type === 'step.complete'), JSON.stringify(result.messages));
    assert.deepEqual(result.step('trapped').error, { message: "Step 'trapped' aborted: job timeout exceeded" });
    assert.equal(rows(result).at(-1)[1], 'onFailure');
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 1000ms');
  });
});
