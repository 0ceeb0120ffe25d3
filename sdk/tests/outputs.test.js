// execute, outputs: a step's returned value on step.complete and in job.complete (run shorthand
// and steps), values that are not JSON or too large, stepRef.result / ctx.outputsOf in later
// steps, and upstream outputs through ctx.needs, ctx.jobOutputs and jobRef.result.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const build = step('build', async () => ({ version: '1.2.3', dropped: undefined }));
const quiet = step('quiet', async () => {});
const bare = async () => ({ bare: true });
const multi = job('multi', {
  runsOn: on,
  steps: [
    build,
    quiet,
    bare,
    step('use', async (ctx) => ({
      fromRef: build.result.version,
      fromOutputsOf: ctx.outputsOf(build),
      bareRef: bare.result.bare,
      bareOutputsOf: ctx.outputsOf(bare),
      quietHasNone: ctx.outputsOf(quiet) === undefined,
    })),
  ],
});
const short = job('short', { runsOn: on, run: async () => ({ answer: 42 }) });
const mx = job('mx', { runsOn: on, matrix: ['a', 'b'], run: async (ctx) => ({ v: ctx.matrix.value }) });
const later = step('later', async () => ({ x: 1 }));
const big = 'x'.repeat(600000);
export default workflow('outputs', {
  jobs: [
    multi,
    short,
    mx,
    job('function', { runsOn: on, run: async () => ({ ok: 1, nested: [{ f() {} }] }) }),
    job('bigint', { runsOn: on, run: async () => ({ n: 1n }) }),
    job('cycle', { runsOn: on, run: async () => { const a = { b: {} }; a.b.back = a; return a; } }),
    job('too-large-step', { runsOn: on, run: async () => 'x'.repeat(1048576) }),
    job('too-large-job', { runsOn: on, steps: [step('a', async () => big), step('b', async () => big)] }),
    job('not-yet', { runsOn: on, steps: [step('early', async () => later.result.x), later] }),
    job('returned-nothing', { runsOn: on, steps: [quiet, step('read', async () => quiet.result.x)] }),
    job('down', {
      runsOn: on,
      needs: [multi, short, mx],
      run: async (ctx) => ({
        needs: ctx.needs,
        shortRef: short.result.answer,
        shortOutputs: ctx.jobOutputs(short),
        byName: ctx.jobOutputs('short'),
        multiRef: multi.result.build.version,
        mxOutputs: ctx.jobOutputs('mx').map((result) => result ?? null),
        mxRef: mx.result.map((result) => result ?? null),
      }),
    }),
    job('stranger', { runsOn: on, run: async () => short.result.answer }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'outputs', job, ...fields });

const UPSTREAM = {
  short: { status: 'success', result: { answer: 42 } },
  multi: { status: 'success', result: { build: { version: '1.2.3' } } },
  mx: [
    { name: 'mx (a)', status: 'success', result: { v: 'a' } },
    { name: 'mx (b)', status: 'failed' },
  ],
};

describe('outputs', { concurrency: true }, () => {
  test('steps job: step.complete carries what each step returned, job.complete them by step name', async () => {
    const result = await run('multi');
    assert.equal(result.job.status, 'success');
    assert.deepEqual(result.step('build').outputs, { version: '1.2.3' });
    assert.equal('outputs' in result.step('quiet'), false);
    assert.deepEqual(result.step('step-1').outputs, { bare: true });
    const use = {
      fromRef: '1.2.3',
      fromOutputsOf: { version: '1.2.3' },
      bareRef: true,
      bareOutputsOf: { bare: true },
      quietHasNone: true,
    };
    assert.deepEqual(result.step('use').outputs, use);
    assert.deepEqual(result.job.outputs, { build: { version: '1.2.3' }, 'step-1': { bare: true }, use });
  });

  test('run shorthand: the job outputs are the step value itself', async () => {
    const result = await run('short');
    assert.deepEqual(result.step('step-1').outputs, { answer: 42 });
    assert.deepEqual(result.job.outputs, { answer: 42 });
  });

  test('a job whose steps return nothing has no outputs', async () => {
    const result = await run('returned-nothing');
    assert.equal('outputs' in result.job, false);
  });

  test('a value that is not JSON fails the step with the reason', async () => {
    const cases = {
      function: 'result.nested[0].f is a function',
      bigint: 'result.n is a BigInt; return it as a string or a number',
      cycle: 'result.b.back refers back to result (a cycle)',
    };
    await Promise.all(
      Object.entries(cases).map(async ([job, reason]) => {
        const result = await run(job);
        const message = `Step 'step-1' returned a value that is not JSON: ${reason}`;
        assert.equal(result.step('step-1').status, 'failed');
        assert.deepEqual(result.step('step-1').error, { message });
        assert.equal('outputs' in result.step('step-1'), false);
        assert.ok(result.linesOf(0).includes(message));
        assert.equal(result.job.status, 'failed');
        assert.equal('outputs' in result.job, false);
      }),
    );
  });

  test('outputs over 1048576 bytes fail the step; job outputs over it fail the job', async () => {
    const step = await run('too-large-step');
    assert.deepEqual(step.step('step-1').error, {
      message:
        "Step 'step-1' returned 1048578 bytes of outputs; the limit is 1048576 (return less, or write a file and use ctx.cache)",
    });
    const job = await run('too-large-job');
    assert.equal(job.step('a').status, 'success');
    assert.equal(job.step('b').status, 'success');
    assert.equal(job.job.status, 'failed');
    assert.equal(job.job.error, 'Job outputs are 1200015 bytes; the limit is 1048576');
    assert.equal('outputs' in job.job, false);
  });

  test('stepRef.result of a step that has not run or returned nothing throws', async () => {
    const notYet = await run('not-yet');
    assert.equal(notYet.step('early').error.message, "Step 'later' has no result yet (it runs after this step, or returned nothing)");
    assert.equal(notYet.step('later').status, 'skipped');
    const nothing = await run('returned-nothing');
    assert.equal(nothing.step('read').error.message, "Step 'quiet' has no result yet (it runs after this step, or returned nothing)");
  });

  test('ctx.needs, ctx.jobOutputs and jobRef.result read the upstream outputs, one row or fanned out', async () => {
    const result = await run('down', { needs: UPSTREAM });
    assert.equal(result.job.status, 'success');
    assert.deepEqual(result.job.outputs, {
      needs: UPSTREAM,
      shortRef: 42,
      shortOutputs: { answer: 42 },
      byName: { answer: 42 },
      multiRef: '1.2.3',
      mxOutputs: [{ v: 'a' }, null],
      mxRef: [{ v: 'a' }, null],
    });
  });

  test('jobRef.result of a job that is not among the needs throws', async () => {
    const result = await run('stranger', { needs: {} });
    assert.equal(
      result.step('step-1').error.message,
      "Job 'short' is not among the needs of job 'stranger', so its result is not here; add it to needs, e.g. needs: ['short']",
    );
  });

  test('.result outside a running job throws', async () => {
    const { step } = await project.importPackage('sdk/index.js');
    assert.throws(() => step('x', async () => 1).result, {
      message: "Step 'x'.result can only be read while a job runs; read it inside a step",
    });
  });
});
