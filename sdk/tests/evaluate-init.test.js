// evaluate (kind `init`): a job's environment names and function env computed on an agent, for
// impure functions the orchestrator cannot run: sync and async functions, `process.env` (the
// request env) and `Date`, environments and env together, their output on the prepare log,
// the execute path's failure texts, a job with nothing to compute, lookup errors and the 60 s
// limit of each function.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, makeProject, runRunner } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const ok = async () => {};
const byBranch = (event) => (event.targetBranch === 'main' ? 'production' : 'staging');
export const ci = workflow('ci', {
  jobs: [
    job('sync-env', {
      runsOn: on,
      env: (event) => ({
        DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'staging',
        REPLICAS: 3,
        DEBUG: false,
      }),
      run: ok,
    }),
    job('async-environment', {
      runsOn: on,
      environment: async (event) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        return byBranch(event);
      },
      run: ok,
    }),
    job('impure', {
      runsOn: on,
      env: () => {
        console.log('reading the region');
        return { REGION: process.env.DEPLOY_REGION, DATED: Date.now() > 0 };
      },
      run: ok,
    }),
    job('both', {
      runsOn: on,
      environments: ['audit', byBranch],
      env: async (event) => ({ DEPLOY_TARGET: (await byBranch(event)) === 'production' ? 'prod' : 'staging' }),
      run: ok,
    }),
    job('static-environment', { runsOn: on, environment: 'production', env: (event) => ({ SHA: event.sha }), run: ok }),
    job('static-env', { runsOn: on, env: { A: '1' }, environment: byBranch, run: ok }),
    job('environment-throws', {
      runsOn: on,
      environments: ['audit', () => { throw new Error('no environment today'); }],
      run: ok,
    }),
    job('env-rejects', { runsOn: on, env: async () => { throw new Error('lookup failed'); }, run: ok }),
    job('env-string', { runsOn: on, env: () => 'prod', run: ok }),
    job('environment-empty', { runsOn: on, environment: async () => '', run: ok }),
    job('nothing', { runsOn: on, environment: 'production', env: { A: '1' }, run: ok }),
    job('plain', { runsOn: on, run: ok }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());

async function evaluate(job, fields = {}) {
  const result = await runRunner(project, {
    type: 'evaluate',
    kind: 'init',
    module: project.module('fixture'),
    file: project.file('fixture'),
    workflow: 'ci',
    job,
    workDir: project.root,
    root: project.root,
    env: {},
    event: { type: 'push', targetBranch: 'main', sha: 'abc123' },
    ...fields,
  });
  assert.equal(result.code, 0, result.stderr);
  const answer = result.messages.find((m) => m.type === 'evaluate.result');
  const logs = result.messages.filter((m) => m.type === 'log.line');
  return { answer, value: answer.value, error: answer.error?.message, logs };
}

describe('evaluate init', { concurrency: true }, () => {
  test('a sync env function: values turned into strings; no environments key', async () => {
    const { answer } = await evaluate('sync-env');
    assert.deepEqual(answer, {
      type: 'evaluate.result',
      value: { env: { DEPLOY_TARGET: 'prod', REPLICAS: '3', DEBUG: 'false' } },
    });
  });

  test('an async environment function is awaited; no env key', async () => {
    assert.deepEqual((await evaluate('async-environment')).value, { environments: ['production'] });
    const other = await evaluate('async-environment', { event: { type: 'push', targetBranch: 'dev' } });
    assert.deepEqual(other.value, { environments: ['staging'] });
  });

  test('an impure function sees the request env in process.env; its output goes to step -1', async () => {
    const { value, logs } = await evaluate('impure', { env: { DEPLOY_REGION: 'eu-west' } });
    assert.deepEqual(value, { env: { REGION: 'eu-west', DATED: 'true' } });
    assert.deepEqual(logs, [{ type: 'log.line', stepIndex: -1, stream: 'stdout', line: 'reading the region' }]);
  });

  test("environments (names as written, functions' results, in order) and env together", async () => {
    assert.deepEqual((await evaluate('both')).value, {
      environments: ['audit', 'production'],
      env: { DEPLOY_TARGET: 'prod' },
    });
    assert.deepEqual((await evaluate('static-environment')).value, {
      environments: ['production'],
      env: { SHA: 'abc123' },
    });
    assert.deepEqual((await evaluate('static-env')).value, { environments: ['production'] });
  });

  test("the request's jobEnv and environments are not looked at", async () => {
    const { value } = await evaluate('both', { jobEnv: { DEPLOY_TARGET: 'from-host' }, environments: ['host'] });
    assert.deepEqual(value, { environments: ['audit', 'production'], env: { DEPLOY_TARGET: 'prod' } });
  });

  test('a throwing function or a wrong value fails with the texts of execute', async () => {
    const expected = {
      'environment-throws': "environment function of job 'environment-throws' threw: no environment today",
      'env-rejects': "env function of job 'env-rejects' threw: lookup failed",
      'env-string':
        "env function of job 'env-string' returned 'prod'; return an object such as { DEPLOY_TARGET: 'prod' }",
      'environment-empty':
        "environment function of job 'environment-empty' returned ''; return a non-empty string such as 'production'",
    };
    for (const [job, message] of Object.entries(expected)) {
      assert.deepEqual((await evaluate(job)).answer, { type: 'evaluate.result', error: { message } });
    }
  });

  test('a job with no environment or env function computes nothing; lookup errors', async () => {
    for (const job of ['nothing', 'plain']) {
      const { error } = await evaluate(job);
      assert.equal(error, `Job '${job}' computes nothing at init (no environment or env function)`);
    }
    assert.equal((await evaluate('missing')).error, "Job 'missing' not found in workflow 'ci'");
    assert.equal((await evaluate('both', { workflow: 'nope' })).error, "Workflow 'nope' not found in module exports");
  });

  test('each function may take 60000ms', async () => {
    const resolve = await project.importPackage('engine/resolve.js');
    const { FUNCTION_TIMEOUT_MS, evaluateEnvironments, evaluateJobEnv } = resolve;
    assert.equal(FUNCTION_TIMEOUT_MS, 60000);
    const request = { job: 'slow', event: {} };
    const never = () => new Promise(() => {});
    await assert.rejects(evaluateEnvironments(request, { environments: ['audit', never] }, { timeoutMs: 50 }), {
      message: "environment function of job 'slow' timed out after 50ms",
    });
    await assert.rejects(evaluateJobEnv(request, { env: never }, { timeoutMs: 50 }), {
      message: "env function of job 'slow' timed out after 50ms",
    });
  });
});
