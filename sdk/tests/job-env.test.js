// execute, event-dependent job values: the job env layer and the environments, taken from the
// request when the host resolved them (`jobEnv`, `environments`), else resolved by the runner
// (functions called with the event); `ctx.environment`; the prepare failures of functions that
// throw or return the wrong kind of value.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const report = async ({ env, environment }) => {
  console.log(JSON.stringify({ environment, target: env.DEPLOY_TARGET, replicas: env.REPLICAS, jobVar: env.JOB_VAR }));
};
const byBranch = (event) => (event.targetBranch === 'main' ? 'production' : 'staging');
export default workflow('envs', {
  jobs: [
    job('deploy', {
      runsOn: on,
      env: (event) => {
        console.log('env function called');
        return { DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'staging', REPLICAS: 3 };
      },
      environments: [byBranch, 'audit'],
      steps: [
        step('deploy', async ({ $ }) => { await $\`echo "Deploying to $DEPLOY_TARGET"\`; }),
        step('report', report),
      ],
    }),
    job('static', { runsOn: on, env: { JOB_VAR: 'from-job' }, environment: 'production', run: report }),
    job('plain', { runsOn: on, run: report }),
    job('env-throws', { runsOn: on, env: () => { throw new Error('no target for this event'); }, run: report }),
    job('env-string', { runsOn: on, env: () => 'prod', run: report }),
    job('env-undefined-value', { runsOn: on, env: (event) => ({ DEPLOY_TARGET: event.sourceBranch }), run: report }),
    job('env-array', { runsOn: on, env: () => [['A', '1']], run: report }),
    job('environment-empty', { runsOn: on, environment: () => '', run: report }),
    job('environment-throws', { runsOn: on, environments: ['audit', () => { throw new Error('nope'); }], run: report }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'envs', job, ...fields });
const reportOf = (result, stepIndex = 0) => JSON.parse(result.linesOf(stepIndex).at(-1));

/**
 * Asserts the job failed in prepare with `message`, logged at step -1 (level error) as
 * `firstLine` (a thrown error's stack starts with `Error: <message>`).
 */
function assertPrepareFailure(result, message, firstLine = message) {
  assert.equal(result.code, 0);
  assert.deepEqual(result.job, {
    type: 'job.complete',
    status: 'failed',
    durationMs: result.job.durationMs,
    error: message,
    stepResults: [],
  });
  assert.deepEqual(result.starts, []);
  const logged = result.logs.filter((m) => m.stepIndex === -1 && m.level === 'error').map((m) => m.line);
  assert.equal(logged[0], firstLine);
}

describe('job env and environments', { concurrency: true }, () => {
  test('without jobEnv, an env function is called with the event and its values reach $ and ctx.env', async () => {
    const result = await run('deploy');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(-1), ['env function called']);
    assert.deepEqual(result.linesOf(0), ['Deploying to prod']);
    assert.deepEqual(reportOf(result, 1), { environment: 'production', target: 'prod', replicas: '3' });

    const other = await run('deploy', { event: { type: 'push', targetBranch: 'dev' } });
    assert.deepEqual(other.linesOf(0), ['Deploying to staging']);
    assert.equal(reportOf(other, 1).environment, 'staging');
  });

  test("the request's jobEnv and environments replace the job's own; its functions are not called", async () => {
    const result = await run('deploy', {
      jobEnv: { DEPLOY_TARGET: 'from-host' },
      environments: ['host-env', 'audit'],
    });
    assert.deepEqual(result.linesOf(-1), []);
    assert.deepEqual(result.linesOf(0), ['Deploying to from-host']);
    assert.deepEqual(reportOf(result, 1), { environment: 'host-env', target: 'from-host' });

    const thrower = await run('env-throws', { jobEnv: {}, environments: [] });
    assert.equal(thrower.job.status, 'success');
    assert.deepEqual(reportOf(thrower), {});
  });

  test('a static env and environment; jobEnv replaces the static env too', async () => {
    assert.deepEqual(reportOf(await run('static')), { environment: 'production', jobVar: 'from-job' });
    assert.deepEqual(reportOf(await run('static', { jobEnv: { REPLICAS: '2' } })), {
      environment: 'production',
      replicas: '2',
    });
    assert.deepEqual(reportOf(await run('plain')), {});
  });

  test('an env function that throws fails the job in prepare', async () => {
    const result = await run('env-throws');
    assertPrepareFailure(
      result,
      "env function of job 'env-throws' threw: no target for this event",
      "env function of job 'env-throws' threw: Error: no target for this event",
    );
    assert.ok(result.linesOf(-1).some((line) => line.includes('fixture.js')), 'the stack points at the function');
  });

  test('an env function must return an object of string, number or boolean values', async () => {
    const expected = {
      'env-string': "env function of job 'env-string' returned 'prod'",
      'env-undefined-value': "env function of job 'env-undefined-value' returned an object whose DEPLOY_TARGET is undefined",
      'env-array': "env function of job 'env-array' returned an array",
    };
    for (const [job, returned] of Object.entries(expected)) {
      assertPrepareFailure(await run(job), `${returned}; return an object such as { DEPLOY_TARGET: 'prod' }`);
    }
  });

  test('an environment function must return a non-empty string and must not throw', async () => {
    assertPrepareFailure(
      await run('environment-empty'),
      "environment function of job 'environment-empty' returned ''; return a non-empty string such as 'production'",
    );
    assertPrepareFailure(
      await run('environment-throws'),
      "environment function of job 'environment-throws' threw: nope",
      "environment function of job 'environment-throws' threw: Error: nope",
    );
  });
});
