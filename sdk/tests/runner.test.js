// The runner process itself: `ready` first, unknown message types ignored, one answer then
// exit 0; exit 2 when the host closes the channel before the answer, 143 on SIGTERM.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, executeRequest, makeProject, runRunner } from './helpers.js';

const project = makeProject({
  fixture: `${SDK_IMPORT}
export default workflow('w', {
  jobs: [job('wait', { runsOn: 'x', run: async ({ $, log }) => { log.info('started'); await $\`sleep 30\`; } })],
});
`,
});
after(() => project.cleanup());
const describeRequest = {
  type: 'describe',
  root: project.root,
  files: [{ module: project.module('fixture'), file: project.file('fixture') }],
};

describe('runner', { concurrency: true }, () => {
  test('sends ready, ignores unknown message types, answers once and exits 0', async () => {
    const result = await runRunner(project, [{ type: 'hello' }, { type: 'abort' }, describeRequest]);
    assert.deepEqual(
      result.messages.map((m) => m.type),
      ['ready', 'describe.result'],
    );
    assert.equal(result.code, 0);
  });

  test('exits 2 when the host hangs up before a request', async () => {
    const result = await runRunner(project, [], (message, channel) => {
      if (message.type === 'ready') channel.hangUp();
    });
    assert.equal(result.code, 2);
  });

  test('exits 2 without job.complete when the host hangs up during execute', async () => {
    const request = executeRequest(project, 'fixture', { workflow: 'w', job: 'wait' });
    const result = await runRunner(project, request, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.hangUp();
    });
    assert.equal(result.code, 2);
    assert.equal(
      result.messages.some((m) => m.type === 'job.complete'),
      false,
    );
  });

  test('exits 143 on SIGTERM', async () => {
    const request = executeRequest(project, 'fixture', { workflow: 'w', job: 'wait' });
    const result = await runRunner(project, request, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.kill('SIGTERM');
    });
    assert.equal(result.code, 143);
  });
});
