// What every context that carries the event also gives: `dispatchInputs` (the request event's,
// `{}` without them), `rawPayload` (its `payload`) and `provider`, in a step, a hook, a rule, a
// dynamic matrix function and a dynamicJob() generator.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject, runRunner } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const fields = ({ dispatchInputs, rawPayload, provider }) => ({ dispatchInputs, rawPayload, provider });
const said = (where) => (ctx) => { console.log(where + ' ' + JSON.stringify(fields(ctx))); return true; };
export default workflow('inputs', {
  on: dispatch({ types: 'deploy' }),
  jobs: [
    job('deploy', {
      runsOn: on,
      rules: [rule('reads inputs', said('rule'))],
      cleanup: said('cleanup'),
      steps: [step('read', async (ctx) => fields(ctx))],
    }),
    job('matrix', {
      runsOn: on,
      matrix: ({ dispatchInputs, provider }) => [dispatchInputs.environment ?? 'none', provider ?? 'no provider'],
      run: async () => {},
    }),
    dynamicJob(({ ctx }) => [
      job('deploy-' + (ctx.dispatchInputs.environment ?? 'nowhere') + '-' + (ctx.provider ?? 'local'), {
        runsOn: on,
        run: async () => {},
      }),
    ]),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());

const DISPATCH = {
  type: 'dispatch',
  action: 'deploy',
  provider: 'github',
  payload: { action: 'deploy', client_payload: { environment: 'production' } },
  dispatchInputs: { environment: 'production', dryRun: false, replicas: 3, note: null },
};
const PUSH = { type: 'push', targetBranch: 'main' };

async function evaluate(fields) {
  const request = {
    type: 'evaluate',
    module: project.module('fixture'),
    file: project.file('fixture'),
    workflow: 'inputs',
    workDir: project.root,
    root: project.root,
    env: {},
    needs: {},
    ...fields,
  };
  const result = await runRunner(project, request);
  assert.equal(result.code, 0, result.stderr);
  return result.messages.find((message) => message.type === 'evaluate.result');
}

describe('event fields of the contexts', { concurrency: true }, () => {
  test('a step, a hook and a rule get the dispatch inputs, the raw payload and the provider', async () => {
    const result = await execute(project, 'fixture', { workflow: 'inputs', job: 'deploy', event: DISPATCH });
    const expected = { dispatchInputs: DISPATCH.dispatchInputs, rawPayload: DISPATCH.payload, provider: 'github' };
    assert.equal(result.job.status, 'success');
    assert.deepEqual(result.step('read').outputs, expected);
    const lines = result.logs.map((message) => message.line);
    assert.ok(lines.includes(`rule ${JSON.stringify(expected)}`), lines.join('\n'));
    assert.ok(lines.includes(`cleanup ${JSON.stringify(expected)}`), lines.join('\n'));
  });

  test('without dispatch inputs, payload or provider: {} and undefined', async () => {
    const result = await execute(project, 'fixture', { workflow: 'inputs', job: 'deploy', event: PUSH });
    assert.deepEqual(result.step('read').outputs, { dispatchInputs: {} });
    assert.ok(result.logs.some((message) => message.line === 'rule {"dispatchInputs":{}}'));
  });

  test('a dynamic matrix function gets them', async () => {
    const matrix = (event) => evaluate({ kind: 'matrix', job: 'matrix', event });
    assert.deepEqual((await matrix(DISPATCH)).value, ['production', 'github']);
    assert.deepEqual((await matrix(PUSH)).value, ['none', 'no provider']);
  });

  test('a dynamicJob() generator gets them in its ctx', async () => {
    const names = async (event) => (await evaluate({ kind: 'jobs', index: 2, event })).value.map((job) => job.name);
    assert.deepEqual(await names(DISPATCH), ['deploy-production-github']);
    assert.deepEqual(await names(PUSH), ['deploy-nowhere-local']);
  });
});
