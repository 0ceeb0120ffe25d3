// execute, caches over IPC: an init row restores its caches before its command and saves them
// after it succeeded (not those restored from their exact key); the job's caches in the rows
// `cache:restore` (after the init rows) and `cache:save` (after the steps, only when they all
// succeeded), skipped like other rows; a step's caches on its own row (hit, miss then save, no
// save when it failed) and in describe; ctx.cache; a host that keeps no caches (warnings,
// misses, a rejected ctx.cache.save); unique request ids; a host that never answers (abort,
// deadline, channel closed).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, SHOW_AND_CAUGHT, cacheHost, describeModules, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}${SHOW_AND_CAUGHT}
const on = 'kici:os:linux';
export default workflow('caches', {
  jobs: [
    job('init-cache', {
      runsOn: on,
      init: {
        run: 'echo installing; echo TOOL=1 >> "$KICI_ENV"',
        cache: [{ key: 'tools-v2', paths: ['~/.tools', '.tools'], restoreKeys: ['tools-'] }, { key: 'other', paths: 'o' }],
      },
      run: async ({ env }) => show({ tool: env.TOOL }),
    }),
    job('init-fails', {
      runsOn: on,
      init: { run: 'exit 3', cache: { key: 'tools', paths: '.tools' } },
      cache: { key: 'deps', paths: 'node_modules' },
      run: async () => {},
    }),
    job('job-cache', {
      runsOn: on,
      init: { run: 'true' },
      cache: [{ key: 'npm-v2', paths: ['node_modules'], restoreKeys: 'npm-' }, { key: 'pip', paths: '~/.cache/pip' }],
      cleanup: async () => {},
      steps: [step('build', async () => console.log('building')), step('test', async () => {})],
    }),
    job('step-fails', {
      runsOn: on,
      cache: { key: 'deps', paths: 'node_modules' },
      onFailure: async () => {},
      steps: [
        step('bad', { continueOnError: true, run: async () => { throw new Error('bad'); } }),
        step('after', async () => {}),
      ],
    }),
    job('step-cache', {
      runsOn: on,
      steps: [
        step('build', {
          cache: [{ key: 'out-v2', paths: 'out', restoreKeys: 'out-' }, { key: 'tools', paths: ['~/.tools'] }],
          run: async () => console.log('building'),
        }),
        step('test', async () => {}),
      ],
    }),
    job('step-cache-fails', {
      runsOn: on,
      steps: [
        step('bad', {
          cache: { key: 'out', paths: 'out' },
          continueOnError: true,
          run: async () => { throw new Error('bad'); },
        }),
      ],
    }),
    job('skipped', { runsOn: on, rules: [rule('never', () => false)], cache: { key: 'k', paths: 'p' }, run: async () => {} }),
    job('explicit', {
      runsOn: on,
      run: async ({ cache }) => {
        show(await cache.restore({ key: 'ctx-v1', paths: ['out'], restoreKeys: ['ctx-'] }));
        show(await cache.save({ key: 'ctx-v1', paths: 'out' }));
        await cache.save({ key: 'ctx-v1', paths: 'out' });
        show(await cache.restore({ key: 'ctx-v1', paths: 'out' }));
        show(await caught(cache.restore({ key: 'ctx-v1', path: 'out' })));
        show(await caught(cache.save([{ key: 'ctx-v1', paths: 'out' }])));
      },
    }),
    job('explicit-errors', {
      runsOn: on,
      steps: [
        step('caught', async ({ cache }) => {
          show(await cache.restore({ key: 'k', paths: 'p' }));
          show(await caught(cache.save({ key: 'k', paths: 'p' })));
        }),
        step('uncaught', { continueOnError: true, run: async ({ cache }) => { await cache.save({ key: 'k', paths: 'p' }); } }),
      ],
    }),
    job('waits', { runsOn: on, cache: { key: 'k', paths: 'p' }, run: async () => {} }),
    job('deadline', { runsOn: on, timeout: 300, cache: { key: 'k', paths: 'p' }, run: async () => {} }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, host, onMessage = host.onMessage) =>
  execute(project, 'fixture', { workflow: 'caches', job }, onMessage);
/** Runs `job` against a new cacheHost(table); resolves with the host and the result. */
const runCached = async (job, table) => {
  const host = cacheHost(table);
  return { host, result: await run(job, host) };
};
const rows = (result) => result.job.stepResults.map((row) => [row.stepIndex, row.stepName, row.status]);
const ops = (host) => host.requests.map(({ op, key }) => `${op} ${key}`);
const NO_CACHES = 'this host keeps no caches';

describe('caches', { concurrency: true }, () => {
  test('an init row restores its caches before its command and saves them after it succeeded', async () => {
    const { host, result } = await runCached('init-cache');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(1), [
      'Cache not found for key tools-v2',
      'Cache not found for key other',
      'installing',
      'Cache saved with key tools-v2 (200 bytes)',
      'Cache saved with key other (100 bytes)',
    ]);
    assert.deepEqual(ops(host), ['restore tools-v2', 'restore other', 'save tools-v2', 'save other']);
    const [restore, , save] = host.requests;
    assert.deepEqual(restore, {
      type: 'cache.request',
      requestId: restore.requestId,
      op: 'restore',
      key: 'tools-v2',
      paths: ['~/.tools', '.tools'],
      restoreKeys: ['tools-'],
    });
    assert.deepEqual(Object.keys(save), ['type', 'requestId', 'op', 'key', 'paths']);
    const position = (predicate) => result.messages.findIndex(predicate);
    const installing = position((message) => message.line === 'installing');
    assert.ok(position((message) => message.requestId === restore.requestId) < installing);
    assert.ok(position((message) => message.requestId === save.requestId) > installing);
    assert.deepEqual(JSON.parse(result.linesOf(0)[0]), { tool: '1' });
    assert.deepEqual(rows(result), [
      [0, 'step-1', 'success'],
      [1, 'init:1', 'success'],
    ]);
  });

  test('an init cache restored from its exact key is not saved again; one restored from a restore key is', async () => {
    const { host, result } = await runCached('init-cache', { entries: { 'tools-v1': 50, other: 7 } });
    assert.deepEqual(result.linesOf(1), [
      'Cache restored from key tools-v1 (50 bytes)',
      'Cache restored from key other (7 bytes)',
      'installing',
      'Cache saved with key tools-v2 (200 bytes)',
      'Cache for key other was restored exactly; not saved',
    ]);
    assert.deepEqual(ops(host), ['restore tools-v2', 'restore other', 'save tools-v2']);
  });

  test('a failed init saves nothing and skips both job cache rows', async () => {
    const { host, result } = await runCached('init-fails');
    assert.equal(result.job.error, "Init 'init:1' failed (exit code 3)");
    assert.deepEqual(ops(host), ['restore tools']);
    assert.deepEqual(rows(result), [
      [0, 'step-1', 'skipped'],
      [1, 'init:1', 'failed'],
      [2, 'cache:restore', 'skipped'],
      [3, 'cache:save', 'skipped'],
    ]);
  });

  test('the job cache is restored after the init rows and saved after the steps, each in a row of its own', async () => {
    const { host, result } = await runCached('job-cache', { entries: { 'npm-v1': 300, pip: 40 } });
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(
      result.starts.map((message) => [message.stepIndex, message.stepName, message.stepType]),
      [
        [2, 'init:1', 'init'],
        [3, 'cache:restore', 'cache'],
        [0, 'build', 'step'],
        [1, 'test', 'step'],
        [4, 'cache:save', 'cache'],
        [5, 'cleanup', 'hook:cleanup'],
      ],
    );
    assert.deepEqual(
      result.starts.find((message) => message.stepName === 'cache:save'),
      {
        type: 'step.start',
        stepIndex: 4,
        stepName: 'cache:save',
        stepType: 'cache',
        state: 'running',
        concurrencyKind: 'sequential',
      },
    );
    assert.deepEqual(result.linesOf(3), [
      'Cache restored from key npm-v1 (300 bytes)',
      'Cache restored from key pip (40 bytes)',
    ]);
    assert.deepEqual(result.linesOf(4), [
      'Cache saved with key npm-v2 (100 bytes)',
      'Cache for key pip was restored exactly; not saved',
    ]);
    assert.deepEqual(
      host.requests.map(({ requestId, ...request }) => request),
      [
        { type: 'cache.request', op: 'restore', key: 'npm-v2', paths: ['node_modules'], restoreKeys: ['npm-'] },
        { type: 'cache.request', op: 'restore', key: 'pip', paths: ['~/.cache/pip'] },
        { type: 'cache.request', op: 'save', key: 'npm-v2', paths: ['node_modules'] },
      ],
    );
    assert.deepEqual(result.step('cache:restore'), {
      type: 'step.complete',
      stepIndex: 3,
      stepName: 'cache:restore',
      status: 'success',
      durationMs: result.step('cache:restore').durationMs,
      attempts: 1,
    });
    assert.deepEqual(rows(result), [
      [0, 'build', 'success'],
      [1, 'test', 'success'],
      [2, 'init:1', 'success'],
      [3, 'cache:restore', 'success'],
      [4, 'cache:save', 'success'],
      [5, 'cleanup', 'success'],
    ]);
  });

  test('a failed step (continueOnError too) skips cache:save; the hooks come after the cache rows', async () => {
    const { host, result } = await runCached('step-fails');
    assert.equal(result.job.status, 'failed');
    assert.deepEqual(ops(host), ['restore deps']);
    assert.deepEqual(rows(result), [
      [0, 'bad', 'failed'],
      [1, 'after', 'success'],
      [2, 'cache:restore', 'success'],
      [3, 'cache:save', 'skipped'],
      [4, 'onFailure', 'success'],
    ]);
  });

  test("a step's caches hit: restored on the step's own row before it runs; exact hits are not saved", async () => {
    const { host, result } = await runCached('step-cache', { entries: { 'out-v1': 50, tools: 7 } });
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(0), [
      'Cache restored from key out-v1 (50 bytes)',
      'Cache restored from key tools (7 bytes)',
      'building',
      'Cache saved with key out-v2 (100 bytes)',
      'Cache for key tools was restored exactly; not saved',
    ]);
    assert.deepEqual(ops(host), ['restore out-v2', 'restore tools', 'save out-v2']);
    assert.deepEqual(host.requests[0].restoreKeys, ['out-']);
    assert.deepEqual(rows(result), [
      [0, 'build', 'success'],
      [1, 'test', 'success'],
    ]);
  });

  test("a step's caches miss: not found before it runs, saved after it succeeded", async () => {
    const { host, result } = await runCached('step-cache');
    assert.deepEqual(result.linesOf(0), [
      'Cache not found for key out-v2',
      'Cache not found for key tools',
      'building',
      'Cache saved with key out-v2 (100 bytes)',
      'Cache saved with key tools (100 bytes)',
    ]);
    assert.deepEqual(ops(host), ['restore out-v2', 'restore tools', 'save out-v2', 'save tools']);
    assert.deepEqual(
      result.starts.map((message) => [message.stepIndex, message.stepName, message.stepType]),
      [
        [0, 'build', 'step'],
        [1, 'test', 'step'],
      ],
    );
  });

  test('a step that failed (continueOnError too) saves none of its caches', async () => {
    const { host, result } = await runCached('step-cache-fails');
    assert.equal(result.step('bad').status, 'failed');
    assert.deepEqual(ops(host), ['restore out']);
    assert.deepEqual(
      result.logs.filter((m) => m.stepIndex === 0 && m.level === 'info').map((m) => m.line),
      ['Cache not found for key out'],
    );
  });

  test("a step's cache is described as a normalised list, after retry and before sourceLocation", async () => {
    const [file] = await describeModules(project, ['fixture']);
    const [build, plain] = file.workflows[0].jobs.find((job) => job.name === 'step-cache').steps;
    assert.deepEqual(Object.keys(build), ['name', 'hasOutputs', 'cache', 'sourceLocation']);
    assert.deepEqual(build.cache, [
      { key: 'out-v2', paths: ['out'], restoreKeys: ['out-'] },
      { key: 'tools', paths: ['~/.tools'] },
    ]);
    assert.equal('cache' in plain, false);
  });

  test('a job skipped by a rule reports its cache rows skipped and asks the host nothing', async () => {
    const { host, result } = await runCached('skipped');
    assert.equal(result.job.status, 'skipped');
    assert.deepEqual(host.requests, []);
    assert.deepEqual(rows(result), [
      [0, 'step-1', 'skipped'],
      [1, 'cache:restore', 'skipped'],
      [2, 'cache:save', 'skipped'],
    ]);
  });

  test("ctx.cache restores and saves on the calling step's log; invalid specs reject with a TypeError", async () => {
    const { host, result } = await runCached('explicit');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(0), [
      'Cache not found for key ctx-v1',
      '{"hit":false}',
      'Cache saved with key ctx-v1 (100 bytes)',
      'undefined',
      'Cache for key ctx-v1 already exists; not saved',
      'Cache restored from key ctx-v1 (100 bytes)',
      '{"hit":true,"matchedKey":"ctx-v1"}',
      JSON.stringify({
        name: 'TypeError',
        message:
          "cache.restore: spec has no option 'path' (use key, paths or restoreKeys); did you mean 'paths'? e.g. cache: { key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: ['npm-'] }",
      }),
      JSON.stringify({
        name: 'TypeError',
        message: 'cache.save: takes one cache spec, not a list; call cache.save() once per spec',
      }),
    ]);
    assert.deepEqual(ops(host), ['restore ctx-v1', 'save ctx-v1', 'save ctx-v1', 'restore ctx-v1']);
    const ids = host.requests.map((request) => request.requestId);
    assert.ok(ids.every((id) => typeof id === 'string' && id !== ''));
    assert.equal(new Set(ids).size, ids.length, `request ids are unique: ${ids}`);
  });

  test('request ids are unique across the rows of a job', async () => {
    const { host } = await runCached('init-cache');
    const ids = host.requests.map((request) => request.requestId);
    assert.equal(ids.length, 4);
    assert.equal(new Set(ids).size, ids.length, `request ids are unique: ${ids}`);
  });

  test('a host that keeps no caches: restores are misses with a warning, saves warn, the job succeeds', async () => {
    const { result } = await runCached('job-cache', { errors: { restore: NO_CACHES, save: NO_CACHES } });
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    const warnings = (stepIndex) =>
      result.logs.filter((m) => m.stepIndex === stepIndex).map((m) => [m.level, m.line]);
    assert.deepEqual(warnings(3), [
      ['warn', `[kici] cache restore failed for key npm-v2: ${NO_CACHES}`],
      ['warn', `[kici] cache restore failed for key pip: ${NO_CACHES}`],
    ]);
    assert.deepEqual(warnings(4), [
      ['warn', `[kici] cache save failed for key npm-v2: ${NO_CACHES}`],
      ['warn', `[kici] cache save failed for key pip: ${NO_CACHES}`],
    ]);
  });

  test('a host that keeps no caches: ctx.cache.restore misses with a warning, ctx.cache.save rejects', async () => {
    const { result } = await runCached('explicit-errors', { errors: { restore: NO_CACHES, save: NO_CACHES } });
    assert.deepEqual(result.linesOf(0), [
      `[kici] cache restore failed for key k: ${NO_CACHES}`,
      '{"hit":false}',
      JSON.stringify({ name: 'Error', message: `cache save failed for key k: ${NO_CACHES}` }),
    ]);
    assert.deepEqual(result.step('uncaught').error, { message: `cache save failed for key k: ${NO_CACHES}` });
    assert.equal(result.job.error, "Step 'uncaught' failed");
  });

  test('an abort while the host has not answered cancels the cache row; the steps and cache:save are skipped', async () => {
    const host = cacheHost({ silent: true });
    const result = await run('waits', host, (message, channel) => {
      host.onMessage(message, channel);
      if (message.type === 'cache.request') channel.send({ type: 'abort', force: false });
    });
    assert.equal(result.job.status, 'cancelled');
    assert.deepEqual(rows(result), [
      [0, 'step-1', 'skipped'],
      [1, 'cache:restore', 'cancelled'],
      [2, 'cache:save', 'skipped'],
    ]);
  });

  test('the job deadline covers a cache row waiting for the host', async () => {
    const result = await run('deadline', cacheHost({ silent: true }));
    assert.equal(result.job.error, 'job_timeout: job exceeded its timeout of 300ms');
    assert.deepEqual(result.step('cache:restore').error, {
      message: "Cache 'cache:restore' aborted: job timeout exceeded",
    });
    assert.equal(result.step('step-1').status, 'skipped');
  });

  test('a host that closes the channel while a request is pending ends the runner with exit code 2', async () => {
    const host = cacheHost({ silent: true });
    const startedAt = performance.now();
    const result = await run('waits', host, (message, channel) => {
      host.onMessage(message, channel);
      if (message.type === 'cache.request') channel.hangUp();
    });
    assert.equal(result.code, 2);
    assert.equal(result.job, undefined);
    assert.ok(performance.now() - startedAt < 5000, 'the runner did not wait for an answer');
  });
});
