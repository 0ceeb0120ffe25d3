// execute, a job's `init` commands: each its own `init:<n>` row (indices after the steps, hooks
// after them), run in order at the checkout root with the job env plus their own env, handing
// `$KICI_ENV` / `$KICI_PATH` on to the later init commands and the steps; a failing, timed-out
// or cancelled init (the rest skipped, the job error, the failure hooks); masking of init output.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MAKE_TOOL, SDK_IMPORT, execute, makeProject } from './helpers.js';

const CANARY = 'canary-5e4d3c2b1a';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const show = (value) => console.log(JSON.stringify(value));
const outcome = async ({ outcome, env }) => show({ outcome, half: env.HALF ?? 'unset' });
export default workflow('inits', {
  jobs: [
    job('tools', {
      runsOn: on,
      env: { JOB_VAR: 'from-job' },
      init: {
        run: 'echo "init in $(basename "$PWD") with $JOB_VAR and $INIT_ONLY"; echo FOO=bar >> "$KICI_ENV"; bash ./make-tool.sh mytool mytool >> "$KICI_PATH"',
        env: { INIT_ONLY: 'init-env' },
      },
      steps: [
        step('use', async ({ $, env }) => {
          await $\`echo "FOO=$FOO INIT_ONLY=\\\${INIT_ONLY:-unset}"\`;
          await $\`mytool hello\`;
          show({ foo: env.FOO, kiciEnv: env.KICI_ENV !== undefined, processFoo: process.env.FOO ?? 'unset' });
        }),
      ],
    }),
    job('ordered', {
      runsOn: on,
      init: [
        { run: 'echo A=1 >> "$KICI_ENV"; for tag in first second; do bash ./make-tool.sh pick $tag >> "$KICI_PATH"; done' },
        { run: 'echo "second sees A=$A in $0"; echo "B=$A-2=x" >> "$KICI_ENV"', shell: 'sh' },
      ],
      onSuccess: async ({ $ }) => { await $\`echo "hook sees $A $B"\`; },
      run: async ({ $ }) => {
        await $\`echo "A=$A B=$B"\`;
        await $\`pick x\`;
      },
    }),
    job('failing', {
      runsOn: on,
      init: [{ run: 'echo HALF=1 >> "$KICI_ENV"; echo before; exit 3' }, { run: 'echo never' }],
      onFailure: outcome,
      cleanup: outcome,
      steps: [step('build', async () => { console.log('never'); }), step('test', async () => {})],
    }),
    job('slow', {
      runsOn: on,
      init: { run: 'echo started; sleep 5', timeout: 300 },
      run: async () => {},
    }),
    job('deadline', {
      runsOn: on,
      timeout: 300,
      init: { run: 'sleep 5' },
      run: async () => {},
    }),
    job('abortable', {
      runsOn: on,
      init: [{ run: 'echo started; sleep 30' }, { run: 'true' }],
      onCancel: outcome,
      run: async () => {},
    }),
    job('no-shell', { runsOn: on, init: { run: 'true', env: { PATH: '/nonexistent' } }, run: async () => {} }),
    job('skipped', { runsOn: on, rules: [rule('never', () => false)], init: { run: 'true' }, run: async () => {} }),
    job('leaky', {
      runsOn: on,
      init: [
        { run: 'echo "init prints $LEAKED"; echo "SEEN=$LEAKED" >> "$KICI_ENV"' },
        { run: 'echo "${CANARY}" > /dev/null; exit 4' },
      ],
      run: async () => {},
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE }, { 'make-tool.sh': MAKE_TOOL });
after(() => project.cleanup());
const run = (job, fields = {}, onMessage) => execute(project, 'fixture', { workflow: 'inits', job, ...fields }, onMessage);
const started = (result, stepName) => result.starts.find((message) => message.stepName === stepName);

describe('job init', { concurrency: true }, () => {
  test('an init command hands $KICI_ENV and $KICI_PATH on to the steps', async () => {
    const result = await run('tools');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(started(result, 'init:1'), {
      type: 'step.start',
      stepIndex: 1,
      stepName: 'init:1',
      stepType: 'init',
      state: 'running',
      concurrencyKind: 'sequential',
    });
    assert.deepEqual(
      result.starts.map((message) => message.stepName),
      ['init:1', 'use'],
    );
    assert.deepEqual(result.linesOf(1), ['init in repo with from-job and init-env']);
    assert.deepEqual(result.linesOf(0).slice(0, 2), ['FOO=bar INIT_ONLY=unset', 'hello from mytool']);
    assert.deepEqual(JSON.parse(result.linesOf(0)[2]), { foo: 'bar', kiciEnv: true, processFoo: 'unset' });
    const initRow = result.step('init:1');
    assert.equal(initRow.status, 'success');
    assert.equal(initRow.attempts, 1);
    assert.deepEqual(result.job.stepResults, [
      { stepIndex: 0, stepName: 'use', status: 'success' },
      { stepIndex: 1, stepName: 'init:1', status: 'success' },
    ]);
  });

  test('init commands run in order, each seeing what the earlier ones handed on; hooks come after them', async () => {
    const result = await run('ordered');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(
      result.starts.map((message) => [message.stepIndex, message.stepName, message.stepType]),
      [
        [1, 'init:1', 'init'],
        [2, 'init:2', 'init'],
        [0, 'step-1', 'step'],
        [3, 'onSuccess', 'hook:onSuccess'],
      ],
    );
    assert.deepEqual(result.linesOf(2), ['second sees A=1 in sh']);
    // Each $KICI_PATH line is prepended in file order: the last line comes first in PATH.
    assert.deepEqual(result.linesOf(0), ['A=1 B=1-2=x', 'x from second']);
    assert.deepEqual(result.linesOf(3), ['hook sees 1 1-2=x']);
  });

  test('a failing init fails the job before any step; the rest is skipped and the failure hooks run', async () => {
    const result = await run('failing');
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Init 'init:1' failed (exit code 3)");
    assert.deepEqual(result.step('init:1').error, {
      message: 'Command failed with exit code 3: echo HALF=1 >> "$KICI_ENV"; echo before; exit 3',
      exitCode: 3,
    });
    assert.deepEqual(result.linesOf(2), ['before']);
    assert.deepEqual(
      result.starts.map((message) => message.stepName),
      ['init:1', 'onFailure', 'cleanup'],
    );
    assert.deepEqual(result.job.stepResults, [
      { stepIndex: 0, stepName: 'build', status: 'skipped' },
      { stepIndex: 1, stepName: 'test', status: 'skipped' },
      { stepIndex: 2, stepName: 'init:1', status: 'failed' },
      { stepIndex: 3, stepName: 'init:2', status: 'skipped' },
      { stepIndex: 4, stepName: 'onFailure', status: 'success' },
      { stepIndex: 5, stepName: 'cleanup', status: 'success' },
    ]);
    assert.deepEqual(result.step('init:2'), {
      type: 'step.complete',
      stepIndex: 3,
      stepName: 'init:2',
      status: 'skipped',
      durationMs: 0,
      attempts: 0,
    });
    // A failed init hands nothing on.
    assert.deepEqual(JSON.parse(result.linesOf(4)[0]), {
      outcome: { status: 'failed', failedStep: 'init:1' },
      half: 'unset',
    });
  });

  test('an init that outlives its timeout is killed and fails the job with the timeout text', async () => {
    const startedAt = performance.now();
    const result = await run('slow');
    assert.ok(performance.now() - startedAt < 4000, 'the sleep was killed');
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Init 'init:1' timed out after 300ms");
    assert.deepEqual(result.step('init:1').error, { message: "Init 'init:1' timed out after 300ms" });
    assert.equal(result.step('step-1').status, 'skipped');
  });

  test('the job deadline covers the init commands', async () => {
    const result = await run('deadline');
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 300ms');
    assert.deepEqual(result.step('init:1').error, { message: "Init 'init:1' aborted: job timeout exceeded" });
    assert.equal(result.step('step-1').status, 'skipped');
  });

  test('an abort during init cancels it like a step: the rest skipped, onCancel runs', async () => {
    const startedAt = performance.now();
    const result = await run('abortable', {}, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.send({ type: 'abort', force: false });
    });
    assert.ok(performance.now() - startedAt < 20000, 'the sleep was killed');
    assert.equal(result.job.status, 'cancelled');
    assert.equal(result.job.error, undefined);
    assert.deepEqual(
      result.job.stepResults.map((row) => [row.stepName, row.status]),
      [
        ['step-1', 'skipped'],
        ['init:1', 'cancelled'],
        ['init:2', 'skipped'],
        ['onCancel', 'success'],
      ],
    );
    assert.deepEqual(JSON.parse(result.linesOf(3)[0]).outcome, { status: 'cancelled' });
  });

  test('an init command that cannot be spawned fails the job naming the init', async () => {
    const result = await run('no-shell');
    assert.equal(result.job.error, "Init 'init:1' failed: spawn bash ENOENT");
    assert.deepEqual(result.step('init:1').error, { message: "Init 'init:1' failed: spawn bash ENOENT" });
  });

  test('a job skipped by a rule reports its init rows skipped too', async () => {
    const result = await run('skipped');
    assert.equal(result.job.status, 'skipped');
    assert.deepEqual(result.job.stepResults, [
      { stepIndex: 0, stepName: 'step-1', status: 'skipped' },
      { stepIndex: 1, stepName: 'init:1', status: 'skipped' },
    ]);
  });

  test('a secret an init command prints is masked, also in its error and the job error', async () => {
    const result = await run('leaky', {
      env: { LEAKED: CANARY },
      secrets: { DEPLOY_KEY: { value: CANARY } },
    });
    assert.deepEqual(result.linesOf(1), ['init prints ***']);
    assert.deepEqual(result.step('init:2').error, {
      message: 'Command failed with exit code 4: echo "***" > /dev/null; exit 4',
      exitCode: 4,
    });
    assert.equal(result.job.error, "Init 'init:2' failed (exit code 4)");
    assert.ok(!JSON.stringify(result.messages).includes(CANARY));
  });
});
