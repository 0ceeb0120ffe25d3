// Dynamic job generators at run time: evaluate kind `jobs` (the generated jobs described like
// static ones, the DynamicJobContext, output on the prepare log, every error text) and execute
// of a generated job (`dynamic: {index}`: the generator re-runs and the job named in the request
// runs like a static job; a job that vanished from the output, a generator that throws).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject, positionOf, runRunner } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { readdirSync } from 'node:fs';
console.log('module loaded');
const on = 'kici:os:linux';
const ok = async () => {};
const build = job('build', { runsOn: on, run: ok });
const many = (count) => Array.from({ length: count }, (_, index) => job('j' + index, { runsOn: on, run: ok }));
export const dyn = workflow('dyn', {
  jobs: [
    build,
    dynamicJob('generated', {
      needs: [build],
      generate: async ({ $, ctx, log }) => {
        log.info('generating for ' + JSON.stringify(ctx));
        await $\`echo "greeting=$GREETING"\`;
        return [
          job('deploy', {
            runsOn: [on, /gpu/],
            needs: [build, 'lint'],
            env: { TARGET: 'prod' },
            steps: [
              step('announce', async ({ $ }) => { await $\`echo "deploying to $TARGET"\`; }),
              async ({ job, needs }) => { console.log(JSON.stringify({ job, needs })); },
            ],
          }),
          job({ runsOn: on, run: async () => { throw new Error('generated step failed'); } }),
        ];
      },
    }),
    dynamicJob(async () => { throw new Error('generator exploded'); }),
    dynamicJob(() => 'not a list'),
    dynamicJob(() => many(101)),
    dynamicJob(() => [job('job-1', { runsOn: on, run: ok }), job({ runsOn: on, run: ok })]),
    dynamicJob(() => readdirSync('packages').sort().map((name) => job('build-' + name, { runsOn: on, run: ok }))),
    dynamicJob(({ env }) => (env.ROUND === '1' ? [job('flaky', { runsOn: on, run: ok })] : [])),
    dynamicJob(() => [build, 42]),
  ],
});
`;

// The packages live in a work directory other than the runner's cwd (the repository root).
const project = makeProject(
  { fixture: FIXTURE },
  { 'checkout/packages/web/package.json': '{}', 'checkout/packages/api/package.json': '{}' },
);
after(() => project.cleanup());

const at = (needle) => ({ file: project.file('fixture'), ...positionOf(FIXTURE, needle) });
const NEEDS = { build: { status: 'success' } };

async function evaluate(index, fields = {}) {
  const result = await runRunner(project, {
    type: 'evaluate',
    kind: 'jobs',
    module: project.module('fixture'),
    file: project.file('fixture'),
    workflow: 'dyn',
    index,
    workDir: project.root,
    root: project.root,
    env: { GREETING: 'hi' },
    event: { type: 'push', targetBranch: 'main' },
    needs: NEEDS,
    ...fields,
  });
  assert.equal(result.code, 0, result.stderr);
  return {
    answer: result.messages.find((m) => m.type === 'evaluate.result'),
    logs: result.messages.filter((m) => m.type === 'log.line'),
  };
}

const errorOf = async (index, fields) => (await evaluate(index, fields)).answer.error?.message;

const runGenerated = (job, index, fields = {}) =>
  execute(project, 'fixture', {
    workflow: 'dyn',
    job,
    dynamic: { index },
    needs: NEEDS,
    env: { KICI_RUN_ID: 'run-1', GREETING: 'hi' },
    ...fields,
  });

describe('evaluate kind jobs', { concurrency: true }, () => {
  test('answers the generated jobs described like static ones; output goes to step -1', async () => {
    const { answer, logs } = await evaluate(1);
    assert.deepEqual(answer.value[0].options, ['runsOn', 'needs', 'env', 'steps']);
    for (const job of answer.value) {
      delete job.options;
      delete job.stepOptions;
    }
    assert.deepEqual(answer, {
      type: 'evaluate.result',
      value: [
        {
          name: 'deploy',
          location: at("job('deploy'"),
          runsOn: [
            { kind: 'exact', value: 'kici:os:linux' },
            { kind: 'regex', source: 'gpu', flags: '' },
          ],
          runsOnPick: 'deterministic',
          needs: ['build', 'lint'],
          steps: [
            { name: 'announce', hasOutputs: false, sourceLocation: at("step('announce'") },
            { name: 'step-1', hasOutputs: false },
          ],
          env: { TARGET: 'prod' },
        },
        {
          name: 'job-1',
          location: at('job({ runsOn: on, run: async () => { throw'),
          runsOn: [{ kind: 'exact', value: 'kici:os:linux' }],
          runsOnPick: 'deterministic',
          needs: [],
          steps: [{ name: 'step-1', hasOutputs: false }],
        },
      ],
    });
    // rawPayload and provider are undefined for this event, so JSON leaves them out.
    const event = { type: 'push', targetBranch: 'main' };
    const context = { workflow: { name: 'dyn' }, event, dispatchInputs: {}, needs: NEEDS };
    assert.deepEqual(
      logs.map((m) => [m.stepIndex, m.stream, m.line]),
      [
        [-1, 'stdout', 'module loaded'],
        [-1, 'log', `generating for ${JSON.stringify(context)}`],
        [-1, 'stdout', 'greeting=hi'],
      ],
    );
  });

  test('the generator runs in workDir', async () => {
    const { answer } = await evaluate(6, { workDir: path.join(project.root, 'checkout') });
    assert.deepEqual(
      answer.value.map((job) => job.name),
      ['build-api', 'build-web'],
    );
  });

  test('a throwing generator answers its message', async () => {
    assert.deepEqual((await evaluate(2)).answer, { type: 'evaluate.result', error: { message: 'generator exploded' } });
  });

  test('what the generator returns is checked', async () => {
    const notJobs = 'the dynamic job function must return an array of job() values';
    assert.equal(await errorOf(3), notJobs);
    assert.equal(await errorOf(8), notJobs);
    assert.equal(await errorOf(4), 'the dynamic job function generated 101 jobs (max 100)');
    assert.equal(await errorOf(5), "the dynamic job function generated two jobs named 'job-1'");
  });

  test('lookup errors', async () => {
    assert.equal(await errorOf(0), "Workflow 'dyn' has no dynamic job at index 0");
    assert.equal(await errorOf(99), "Workflow 'dyn' has no dynamic job at index 99");
    assert.equal(await errorOf(1, { workflow: 'nope' }), "Workflow 'nope' not found in module exports");
    assert.equal(
      await errorOf(1, { kind: 'bogus' }),
      "unknown evaluate kind 'bogus' (expected 'matrix', 'jobs' or 'init')",
    );
  });
});

describe('execute a generated job', { concurrency: true }, () => {
  test('re-runs the generator and runs the job named in the request like a static job', async () => {
    const result = await runGenerated('deploy', 1, { env: { KICI_RUN_ID: 'run-1', GREETING: 'again' } });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      result.starts.map((m) => [m.stepIndex, m.stepName, m.state]),
      [
        [0, 'announce', 'running'],
        [1, 'step-1', 'running'],
      ],
    );
    assert.deepEqual(result.linesOf(0), ['deploying to prod']);
    assert.deepEqual(JSON.parse(result.linesOf(1)[0]), {
      job: {
        name: 'deploy',
        runsOn: [
          { kind: 'exact', value: 'kici:os:linux' },
          { kind: 'regex', source: 'gpu', flags: '' },
        ],
      },
      needs: NEEDS,
    });
    const prepare = result.linesOf(-1);
    assert.equal(prepare[0], 'module loaded');
    assert.match(prepare[1], /^generating for /);
    assert.equal(prepare[2], 'greeting=again');
    assert.deepEqual(result.job.stepResults, [
      { stepIndex: 0, stepName: 'announce', status: 'success' },
      { stepIndex: 1, stepName: 'step-1', status: 'success' },
    ]);
    assert.equal(result.job.status, 'success');
  });

  test('a failing generated job fails like a static one', async () => {
    const result = await runGenerated('job-1', 1);
    assert.equal(result.step('step-1').status, 'failed');
    assert.deepEqual(result.step('step-1').error, { message: 'generated step failed' });
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Step 'step-1' failed");
  });

  test('a job missing from the re-run output fails the job (non-deterministic generator)', async () => {
    const evaluated = await evaluate(7, { env: { GREETING: 'hi', ROUND: '1' } });
    assert.deepEqual(
      evaluated.answer.value.map((job) => job.name),
      ['flaky'],
    );
    const result = await runGenerated('flaky', 7, { env: { GREETING: 'hi', ROUND: '2' } });
    const message = "DynamicJobFn non-deterministic re-evaluation: job 'flaky' no longer exists in the generator's output";
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.job.error, message);
    assert.equal(result.job.status, 'failed');
    assert.deepEqual(result.job.stepResults, []);
    assert.deepEqual(result.starts, []);
    assert.ok(
      result.logs.some((m) => m.stepIndex === -1 && m.level === 'error' && m.line.includes(message)),
      'the error is on the prepare log',
    );
  });

  test('a generator that throws fails the job', async () => {
    const result = await runGenerated('anything', 2);
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, 'Dynamic job evaluation failed: generator exploded');
    assert.deepEqual(result.job.stepResults, []);
    assert.equal(result.linesOf(-1)[1], 'Dynamic job evaluation failed: Error: generator exploded');
  });
});
