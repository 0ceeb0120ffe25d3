// execute, outputs: a step's returned value on step.complete and in job.complete (run shorthand
// and steps), values that are not JSON or too large, stepRef.result / ctx.outputsOf in later
// steps, upstream outputs through ctx.needs, ctx.jobOutputs and jobRef.result, and steps'
// `outputs` schemas: checked when the step is defined, the returned value checked against them.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, execute, makeProject, thrown } from './helpers.js';

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

const SCHEMAS = `${SDK_IMPORT}
import { z } from '@kici-dev/sdk';
const on = 'kici:os:linux';
const release = { version: z.string(), files: z.array(z.string()).default([]) };
const typed = (name, run) => step(name, { outputs: release, run });
const made = typed('made', async () => ({ version: '1.2.3', extra: 'dropped' }));
export default workflow('schemas', {
  jobs: [
    job('match', { runsOn: on, steps: [made, step('read', async () => ({ version: made.result.version, files: made.result.files }))] }),
    job('object-schema', {
      runsOn: on,
      steps: [step('doubled', { outputs: z.object({ n: z.number() }).transform(({ n }) => ({ n: n * 2 })), run: async () => ({ n: 1 }) })],
    }),
    job('strict', { runsOn: on, steps: [step('strict', { outputs: z.object({ n: z.number() }).strict(), run: async () => ({ n: 1, m: 2 }) })] }),
    job('wrong-type', { runsOn: on, steps: [typed('typed', async () => ({ version: 123, files: ['a', 7] })), step('after', async () => {})] }),
    job('missing-key', { runsOn: on, steps: [typed('typed', async () => ({ files: [] }))] }),
    job('nothing', { runsOn: on, steps: [typed('typed', async () => {})] }),
    job('many', {
      runsOn: on,
      steps: [step('many', { outputs: { a: z.string(), b: z.string(), c: z.string(), d: z.string(), e: z.string() }, run: async () => ({}) })],
    }),
    job('long', {
      runsOn: on,
      steps: [step('long', { outputs: { kind: z.literal('x'.repeat(500)) }, run: async () => ({ kind: 'y' }) })],
    }),
    job('not-json', { runsOn: on, steps: [step('big', { outputs: { n: z.any() }, run: async () => ({ n: 1n }) })] }),
    job('throws', {
      runsOn: on,
      steps: [step('throws', { outputs: z.object({ n: z.number() }).refine(() => { throw new Error('refinement broke'); }), run: async () => ({ n: 1 }) })],
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE, schemas: SCHEMAS });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'outputs', job, ...fields });
const runSchemas = (job) => execute(project, 'schemas', { workflow: 'schemas', job });

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
      bigint: 'result.n is a BigInt; use a string or a number',
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

describe('outputs schemas', { concurrency: true }, () => {
  test('a matching value: the outputs are what the schema parsed (unknown keys dropped, defaults filled in, transformed)', async () => {
    const result = await runSchemas('match');
    assert.equal(result.job.status, 'success');
    assert.deepEqual(result.step('made').outputs, { version: '1.2.3', files: [] });
    assert.deepEqual(result.step('read').outputs, { version: '1.2.3', files: [] });
    assert.deepEqual(result.job.outputs, { made: { version: '1.2.3', files: [] }, read: { version: '1.2.3', files: [] } });
    const objectSchema = await runSchemas('object-schema');
    assert.deepEqual(objectSchema.job.outputs, { doubled: { n: 2 } });
  });

  test('a step with an outputs schema is described with hasOutputs', async () => {
    const [file] = await describeModules(project, ['schemas']);
    const match = file.workflows[0].jobs.find((job) => job.name === 'match');
    assert.deepEqual(
      match.steps.map(({ name, hasOutputs }) => ({ name, hasOutputs })),
      [
        { name: 'made', hasOutputs: true },
        { name: 'read', hasOutputs: false },
      ],
    );
  });

  /** Asserts that step `stepName` of `job` failed with `message` (logged too) and kept no outputs. */
  const assertMismatch = async (job, stepName, message) => {
    const result = await runSchemas(job);
    const complete = result.step(stepName);
    assert.equal(complete.status, 'failed');
    assert.deepEqual(complete.error, { message });
    assert.equal('outputs' in complete, false);
    assert.ok(result.linesOf(complete.stepIndex).includes(message));
    assert.equal(result.job.status, 'failed');
    assert.equal('outputs' in result.job, false);
    return result;
  };

  test('a value of the wrong type fails the step with each issue and keeps no outputs', async () => {
    const result = await assertMismatch(
      'wrong-type',
      'typed',
      "Step 'typed' returned outputs that do not match its schema: result.version: Expected string, received number; result.files[1]: Expected string, received number",
    );
    assert.equal(result.step('after').status, 'skipped');
  });

  test('a missing key, or no value at all, fails the step', async () => {
    await assertMismatch('missing-key', 'typed', "Step 'typed' returned outputs that do not match its schema: result.version: Required");
    await assertMismatch('nothing', 'typed', "Step 'typed' returned outputs that do not match its schema: result: Required");
    await assertMismatch(
      'strict',
      'strict',
      "Step 'strict' returned outputs that do not match its schema: result: Unrecognized key(s) in object: 'm'",
    );
  });

  test('the error names the first three issues, each cut to 200 characters', async () => {
    await assertMismatch(
      'many',
      'many',
      "Step 'many' returned outputs that do not match its schema: result.a: Required; result.b: Required; result.c: Required; and 2 more",
    );
    const result = await runSchemas('long');
    const message = result.step('long').error.message;
    const prefix = "Step 'long' returned outputs that do not match its schema: result.kind: Invalid literal value, expected";
    assert.ok(message.startsWith(prefix), message);
    assert.equal(message.length, "Step 'long' returned outputs that do not match its schema: ".length + 200);
    assert.ok(message.endsWith('…'));
  });

  test('what the schema passes must still be JSON; a schema that throws fails the step', async () => {
    await assertMismatch('not-json', 'big', "Step 'big' returned a value that is not JSON: result.n is a BigInt; use a string or a number");
    await assertMismatch(
      'throws',
      'throws',
      "Step 'throws' returned outputs that could not be checked against its schema: refinement broke",
    );
  });

  test('outputs that are not zod schemas are refused when the step is defined', async () => {
    const { step, z } = await project.importPackage('sdk/index.js');
    const run = async () => ({});
    const suggestion =
      "e.g. import { z } from '@kici-dev/sdk'; step('build', { outputs: { version: z.string() }, run: async () => ({ version: '1.2.3' }) })";
    const cases = [
      ['version', "got 'version'"],
      [null, 'got null'],
      [[z.string()], 'got an array'],
      [z.string(), 'got a ZodString schema'],
      [new Map(), 'got object'],
    ];
    for (const [outputs, got] of cases) {
      assert.deepEqual(thrown(() => step('build', { outputs, run })), {
        message: `Step "build": outputs must be an object of zod schemas or a zod object schema, ${got}`,
        suggestion,
      });
    }
    assert.deepEqual(thrown(() => step('build', { outputs: { version: 'string' }, run })), {
      message: `Step "build": outputs.version must be a zod schema, got 'string'`,
      suggestion,
    });
    assert.equal(thrown(() => step({ outputs: { n: 1 }, run })).message, 'Step "(unnamed)": outputs.n must be a zod schema, got 1');
    assert.equal(step('ok', { outputs: z.object({ n: z.number() }).refine(() => true), run })._tag, 'Step');
  });
});
