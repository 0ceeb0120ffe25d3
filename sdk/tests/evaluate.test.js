// evaluate (kind `matrix`): the dynamic matrix value, a throwing function's message, a function
// reading the work directory, its output on the prepare log, the job env layer it sees, and
// lookup errors.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, makeProject, runRunner } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { readdirSync } from 'node:fs';
const on = 'kici:os:linux';
const ok = async () => {};
export const ci = workflow('ci', {
  jobs: [
    job('static', { runsOn: on, matrix: ['a'], run: ok }),
    job('list', { runsOn: on, matrix: async ({ ctx, log }) => { log.info('for ' + ctx.job.name); return ['x', 'y']; }, run: ok }),
    job('dims', { runsOn: on, matrix: () => ({ os: ['linux'], node: ['18', '20'] }), run: ok }),
    job('throws', { runsOn: on, matrix: async () => { throw new Error('no packages today'); }, run: ok }),
    job('packages', { runsOn: on, matrix: () => readdirSync('packages').sort(), run: ok }),
    job('shell', { runsOn: on, matrix: async ({ $ }) => String(await $\`echo "$GREETING"\`).trim().split(' '), run: ok }),
    job('bad', { runsOn: on, matrix: () => 42, run: ok }),
    job('job-env', {
      runsOn: on,
      env: (event) => ({ TARGET: event.targetBranch === 'main' ? 'prod' : 'staging' }),
      matrix: ({ env }) => [env.TARGET],
      run: ok,
    }),
  ],
});
`;

const project = makeProject(
  { fixture: FIXTURE },
  { 'packages/web/package.json': '{}', 'packages/api/package.json': '{}' },
);
after(() => project.cleanup());

async function evaluate(job, fields = {}) {
  const result = await runRunner(project, {
    type: 'evaluate',
    kind: 'matrix',
    module: project.module('fixture'),
    file: project.file('fixture'),
    workflow: 'ci',
    job,
    workDir: project.root,
    root: project.root,
    env: {},
    event: { type: 'push' },
    ...fields,
  });
  assert.equal(result.code, 0, result.stderr);
  return {
    answer: result.messages.find((m) => m.type === 'evaluate.result'),
    logs: result.messages.filter((m) => m.type === 'log.line'),
  };
}

describe('evaluate', { concurrency: true }, () => {
  test('returns the value of the matrix function; its log goes to step -1', async () => {
    const { answer, logs } = await evaluate('list');
    assert.deepEqual(answer, { type: 'evaluate.result', value: ['x', 'y'] });
    assert.deepEqual(logs, [{ type: 'log.line', stepIndex: -1, stream: 'log', line: 'for list', level: 'info' }]);
    assert.deepEqual((await evaluate('dims')).answer.value, { os: ['linux'], node: ['18', '20'] });
  });

  test('a throwing function returns its message', async () => {
    const { answer } = await evaluate('throws');
    assert.deepEqual(answer, { type: 'evaluate.result', error: { message: 'no packages today' } });
  });

  test('the function runs in workDir', async () => {
    assert.deepEqual((await evaluate('packages')).answer.value, ['api', 'web']);
  });

  test('$ runs with the request env and its output goes to step -1', async () => {
    const { answer, logs } = await evaluate('shell', { env: { GREETING: 'hello there' } });
    assert.deepEqual(answer.value, ['hello', 'there']);
    assert.deepEqual(
      logs.map((m) => [m.stepIndex, m.line]),
      [[-1, 'hello there']],
    );
  });

  test("the job env layer is the job's env function called with the event, or the request's jobEnv", async () => {
    assert.deepEqual((await evaluate('job-env', { event: { type: 'push', targetBranch: 'main' } })).answer.value, [
      'prod',
    ]);
    assert.deepEqual((await evaluate('job-env', { jobEnv: { TARGET: 'from-host' } })).answer.value, ['from-host']);
  });

  test('lookup and shape errors', async () => {
    assert.equal((await evaluate('static')).answer.error.message, "Job 'static' has no dynamic matrix");
    assert.equal(
      (await evaluate('list', { workflow: 'nope' })).answer.error.message,
      "Workflow 'nope' not found in module exports",
    );
    assert.equal(
      (await evaluate('bad')).answer.error.message,
      'the matrix function must return a string[] or a Record<string, string[]>',
    );
  });
});
