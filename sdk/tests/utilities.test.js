// The SDK's utility exports, in-process: waitFor (success, deadline text, onTimeout, thrown
// checks, abort), evaluateRules, isEventType, validateDag (each error), expandMatrix and
// applyIncludeExclude. waitForStep's outputs reaching step.complete are checked through the runner.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
import { waitForStep } from '@kici-dev/sdk';
let polls = 0;
export default workflow('wait', {
  jobs: [
    job('ready', {
      runsOn: 'kici:os:linux',
      steps: [waitForStep('marker', { intervalMs: 1, check: ({ event }) => (++polls >= 3 ? { sha: event.sha, polls } : false) })],
    }),
    job('never', {
      runsOn: 'kici:os:linux',
      steps: [waitForStep('marker', { intervalMs: 5, timeoutMs: 20, check: () => false })],
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const {
  WaitForTimeoutError,
  applyIncludeExclude,
  evaluateRules,
  expandMatrix,
  isDynamicFunction,
  isEventType,
  isStaticArray,
  isStaticObject,
  rule,
  skip,
  validateDag,
  waitFor,
} = await project.importPackage('sdk/index.js');

/** A check that fails `misses` times (throwing when `throws`), then returns `value`. */
function countdown(misses, value, { throws = false } = {}) {
  let calls = 0;
  const check = async () => {
    calls += 1;
    if (calls > misses) return value;
    if (throws) throw new Error(`not yet ${calls}`);
    return false;
  };
  return { check, calls: () => calls };
}

describe('waitFor', () => {
  test('resolves with the first truthy value of check', async () => {
    const { check, calls } = countdown(2, { ready: true });
    assert.deepEqual(await waitFor({ check, intervalMs: 1 }), { ready: true });
    assert.equal(calls(), 3);
  });

  test('at the deadline it throws WaitForTimeoutError with the contract text and the last error', async () => {
    const { check } = countdown(Infinity, true, { throws: true });
    const error = await waitFor({ check, intervalMs: 5, timeoutMs: 20, description: 'the marker file' }).catch((e) => e);
    assert.ok(error instanceof WaitForTimeoutError);
    assert.equal(error.name, 'WaitForTimeoutError');
    assert.equal(error.message, 'Timed out after 20ms waiting for the marker file');
    assert.match(error.lastError.message, /^not yet \d+$/);

    const plain = await waitFor({ check: () => false, intervalMs: 5, timeoutMs: 10 }).catch((e) => e);
    assert.equal(plain.message, 'Timed out after 10ms waiting for the condition');
    assert.equal('lastError' in plain, false);
  });

  test('onTimeout gives the value at the deadline', async () => {
    assert.equal(await waitFor({ check: () => 0, intervalMs: 1, timeoutMs: 5, onTimeout: () => 'gave up' }), 'gave up');
  });

  test('swallowErrors: false rethrows what check threw', async () => {
    const { check, calls } = countdown(1, true, { throws: true });
    await assert.rejects(waitFor({ check, intervalMs: 1, swallowErrors: false }), { message: 'not yet 1' });
    assert.equal(calls(), 1);
  });

  test('an abort rejects with the signal reason, also during the initial delay', async () => {
    const controller = new AbortController();
    const waiting = waitFor({ check: () => false, intervalMs: 10_000, signal: controller.signal });
    const reason = new Error('stop');
    setImmediate(() => controller.abort(reason));
    await assert.rejects(waiting, (error) => error === reason);
    await assert.rejects(
      waitFor({ check: () => true, initialDelayMs: 10_000, signal: AbortSignal.abort('gone') }),
      (error) => error === 'gone',
    );
  });

  test('a check that is not a function is a KiciError saying what to pass', async () => {
    await assert.rejects(waitFor({}), { name: 'KiciError', message: 'waitFor: check must be a function' });
  });
});

describe('helpers', () => {
  test('evaluateRules: in order, stopping at the first false, a throwing check blocks', async () => {
    const heard = [];
    const cb = (label, passed) => heard.push([label, passed]);
    const ctx = { event: { type: 'push' } };
    const rules = [rule('always'), skip('on push', ({ event }) => event.type === 'push'), rule('unreached')];
    assert.deepEqual(await evaluateRules(rules, ctx, 'job deploy', cb), { passed: false, label: 'on push' });
    assert.deepEqual(heard, [
      ['always', true],
      ['on push', false],
    ]);
    assert.deepEqual(await evaluateRules([rule('always')], ctx), { passed: true });
    const broken = rule('broken', () => {
      throw new Error('boom');
    });
    assert.deepEqual(await evaluateRules(broken, ctx), { passed: false, label: 'broken', problem: 'threw: boom' });
    await assert.rejects(evaluateRules([() => true], ctx, 'job deploy'), {
      message: 'job deploy: rules must be created with rule() or skip()',
    });
  });

  test("isEventType: 'pr' and 'pull_request' are the same type", () => {
    assert.equal(isEventType({ type: 'pull_request' }, 'pr'), true);
    assert.equal(isEventType({ type: 'pull_request' }, 'pull_request'), true);
    assert.equal(isEventType({ type: 'push' }, 'push'), true);
    assert.equal(isEventType({ type: 'push' }, 'pr'), false);
    assert.equal(isEventType(undefined, 'push'), false);
  });

  test('validateDag: order, self-reference, missing dependency, cycle', () => {
    assert.deepEqual(
      validateDag([
        { name: 'deploy', needs: ['test', 'build'] },
        { name: 'build', needs: [] },
        { name: 'test', needs: ['build'] },
      ]),
      { valid: true, sortedOrder: ['build', 'test', 'deploy'] },
    );
    assert.deepEqual(validateDag([{ name: 'a', needs: ['a'] }]), { valid: false, error: 'self-reference', nodes: ['a'] });
    assert.deepEqual(validateDag([{ name: 'a', needs: ['ghost'] }, { name: 'b', needs: [] }]), {
      valid: false,
      error: 'missing-dependency',
      nodes: ['a'],
    });
    assert.deepEqual(
      validateDag([
        { name: 'a', needs: ['c'] },
        { name: 'b', needs: ['a'] },
        { name: 'c', needs: ['b'] },
        { name: 'after', needs: ['c'] },
        { name: 'free', needs: [] },
      ]),
      { valid: false, error: 'cycle', nodes: ['a', 'b', 'c'] },
    );
  });

  test('expandMatrix: one dimension as value, several in dimension order', () => {
    assert.deepEqual(expandMatrix(['a', 'b']), [{ value: 'a' }, { value: 'b' }]);
    assert.deepEqual(expandMatrix({ os: ['linux', 'mac'], node: ['18', '20'] }), [
      { os: 'linux', node: '18' },
      { os: 'linux', node: '20' },
      { os: 'mac', node: '18' },
      { os: 'mac', node: '20' },
    ]);
    assert.deepEqual(expandMatrix({}), []);
    assert.equal(isStaticArray(['a']), true);
    assert.equal(isStaticObject({ a: ['1'] }), true);
    assert.equal(isStaticObject(['a']), false);
    assert.equal(isDynamicFunction(async () => ['a']), true);
  });

  test('applyIncludeExclude: exclude first ({} matches nothing), then include when absent ({} ignored)', () => {
    const all = expandMatrix({ os: ['linux', 'mac'], node: ['18', '20'] });
    assert.deepEqual(
      applyIncludeExclude(all, [{ os: 'mac', node: '18' }, { os: 'win', node: '20' }, {}], [{ os: 'mac' }, {}]),
      [
        { os: 'linux', node: '18' },
        { os: 'linux', node: '20' },
        { os: 'mac', node: '18' },
        { os: 'win', node: '20' },
      ],
    );
    assert.deepEqual(applyIncludeExclude(all, [{ node: '20', os: 'linux' }]), all);
    assert.deepEqual(applyIncludeExclude(all), all);
  });
});

describe('waitForStep', { concurrency: true }, () => {
  const run = (job) => execute(project, 'fixture', { workflow: 'wait', job });

  test('what the check returned is the step outputs', async () => {
    const result = await run('ready');
    assert.equal(result.step('marker').status, 'success');
    assert.deepEqual(result.step('marker').outputs, { sha: 'abc123', polls: 3 });
  });

  test('at the deadline the step fails with the step name in the text', async () => {
    const result = await run('never');
    assert.deepEqual(result.step('marker').error, { message: 'Timed out after 20ms waiting for marker' });
  });
});

describe('isMatrixJobOutputs and normalizeApproval', () => {
  test('isMatrixJobOutputs tells a fanned-out upstream from a single one', async () => {
    const { isMatrixJobOutputs } = await project.importPackage('sdk/index.js');
    assert.equal(isMatrixJobOutputs([{ name: 'test (a)', status: 'success', result: { shard: 'a' } }]), true);
    assert.equal(isMatrixJobOutputs([]), true);
    assert.equal(isMatrixJobOutputs({ status: 'success', result: { shard: 'a' } }), false);
    assert.equal(isMatrixJobOutputs(undefined), false);
    assert.equal(isMatrixJobOutputs([{ status: 'success' }]), false);
  });

  test('normalizeApproval gives the lock file form and throws what fail builds', async () => {
    const { normalizeApproval } = await project.importPackage('sdk/index.js');
    const fail = (message) => new Error(message);
    assert.equal(normalizeApproval(false, fail), undefined);
    assert.deepEqual(normalizeApproval([{ team: 'ops' }], fail), { clauses: [{ team: 'ops' }], when: 'always' });
    assert.throws(() => normalizeApproval(42, fail));
  });
});
