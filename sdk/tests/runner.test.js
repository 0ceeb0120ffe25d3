// The runner process itself: `ready` first, unknown message types and lines that are not JSON
// objects ignored, one answer then exit 0; exit 2 when the host closes the channel before the
// answer, 143 on SIGTERM, 130 on SIGINT, 1 on an uncaught exception. Whichever way it exits,
// the `$` process groups it started are stopped first (SIGKILL after the grace for members
// that ignore SIGTERM), rule checks included, and the private directories of the rows that
// were running (mounted secrets, `$KICI_ENV` / `$KICI_PATH` files) are removed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import {
  SDK_IMPORT,
  executeRequest,
  killLeftover,
  makeProject,
  processGone,
  runRunner,
  waitUntil,
} from './helpers.js';

const project = makeProject({
  fixture: `${SDK_IMPORT}
export default workflow('w', {
  jobs: [
    job('wait', { runsOn: 'x', run: async ({ $, log }) => { log.info('started'); await $\`sleep 30\`; } }),
    job('temp-dirs', {
      runsOn: 'x',
      run: async ({ $, log, env, secrets }) => {
        const file = await secrets.mountFile({ sources: ['KEY'] });
        log.info(JSON.stringify([env.KICI_ENV, file]));
        await $\`sleep 30\`;
      },
    }),
    job('stubborn', {
      runsOn: 'x',
      run: async ({ $ }) => { await $\`(trap '' TERM; echo "pid $BASHPID"; exec sleep 60 >/dev/null 2>&1) & wait\`; },
    }),
    job('slow-rule', {
      runsOn: 'x',
      rules: [rule('slow', async ({ $ }) => { await $\`echo "pid $$"; exec sleep 30\`; return true; })],
      run: async () => {},
    }),
    job('crash', {
      runsOn: 'x',
      run: async ({ $ }) => {
        await $\`sleep 30 >/dev/null 2>&1 & echo "pid $!"\`;
        setTimeout(() => { throw new Error('async boom'); }, 0);
        await new Promise(() => {});
      },
    }),
  ],
});
`,
});
after(() => project.cleanup());
const describeRequest = {
  type: 'describe',
  root: project.root,
  files: [{ module: project.module('fixture'), file: project.file('fixture') }],
};

/** Runs `job`; once a log line `pid <n>` arrives, records n and calls `act(channel)`. */
async function runUntilPid(job, act) {
  let pid;
  const result = await runRunner(project, executeRequest(project, 'fixture', { workflow: 'w', job }), (message, channel) => {
    const match = message.type === 'log.line' ? /^pid (\d+)$/.exec(message.line) : null;
    if (match === null) return;
    pid = Number(match[1]);
    act(channel);
  });
  after(() => killLeftover(pid));
  assert.ok(pid !== undefined, `no pid line; stderr: ${result.stderr}`);
  return { ...result, pid };
}

describe('runner', { concurrency: true }, () => {
  test('sends ready, ignores unknown types and lines that are not JSON objects, answers once, exits 0', async () => {
    const notObjects = ['{not json', 'null', '[1]', '42', '"text"'];
    const result = await runRunner(project, [{ type: 'hello' }, { type: 'abort' }, ...notObjects, describeRequest]);
    assert.deepEqual(
      result.messages.map((m) => m.type),
      ['ready', 'describe.result'],
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      result.stderr.trimEnd().split('\n'),
      notObjects.map((line) => `[kici] ignored a line from the host that is not a JSON object: ${line}`),
    );
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

  test("a hang-up during a step still removes the step's private directories", async () => {
    const request = executeRequest(project, 'fixture', {
      workflow: 'w',
      job: 'temp-dirs',
      secrets: { KEY: { value: 'value-of-key' } },
    });
    let files;
    const result = await runRunner(project, request, (message, channel) => {
      if (message.type !== 'log.line' || !message.line.startsWith('[')) return;
      files = JSON.parse(message.line);
      assert.ok(files.every((file) => fs.existsSync(file)));
      channel.hangUp();
    });
    assert.equal(result.code, 2);
    assert.deepEqual(
      files.map((file) => fs.existsSync(file)),
      [false, false],
    );
  });

  test('exits 130 on SIGINT', async () => {
    const request = executeRequest(project, 'fixture', { workflow: 'w', job: 'wait' });
    const result = await runRunner(project, request, (message, channel) => {
      if (message.type === 'log.line' && message.line === 'started') channel.kill('SIGINT');
    });
    assert.equal(result.code, 130);
  });

  test('on SIGTERM, exits 143 once a $ member that ignores SIGTERM got SIGKILL', async () => {
    const result = await runUntilPid('stubborn', (channel) => channel.kill('SIGTERM'));
    assert.equal(result.code, 143);
    await waitUntil(() => processGone(result.pid), 'the stubborn member is gone', 1000);
  });

  test('a host hang-up during a job rule stops the rule and kills its $ command', async () => {
    const result = await runUntilPid('slow-rule', (channel) => channel.hangUp());
    assert.equal(result.code, 2);
    await waitUntil(() => processGone(result.pid), 'the rule command is gone', 1000);
  });

  test('an uncaught exception exits 1 after killing the $ groups left behind', async () => {
    const result = await runUntilPid('crash', () => {});
    assert.equal(result.code, 1);
    // Thrown in the step's async context, so the report is on the step's log.
    const report = result.messages.find((m) => m.type === 'log.line' && m.line.startsWith('[kici]'));
    assert.deepEqual(report, {
      type: 'log.line',
      stepIndex: 0,
      stream: 'stderr',
      line: '[kici] uncaught exception: Error: async boom',
    });
    await waitUntil(() => processGone(result.pid), 'the background sleep is gone', 1000);
  });
});
