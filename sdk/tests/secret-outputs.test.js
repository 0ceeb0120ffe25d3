// ctx.setSecretOutput: the values in job.complete `secretOutputs` (a name set again replaced,
// hooks too, omitted when none), each value masked from the moment it is set (log lines, `$`
// output of a shell made before, thrown errors), and the checks: 20 names per job, 65536 bytes
// of UTF-8 per value, env-var-style names, non-empty string values.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const TOKEN = 'token-5e4d3c2b1a09';
const FIRST = 'first-value-1234';
const SECOND = 'second-value-5678';
const HOOK_VALUE = 'hook-value-abcd';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
const attempt = (fn) => {
  try {
    fn();
    return 'no error';
  } catch (error) {
    return error.name + ': ' + error.message;
  }
};
export default workflow('outputs', {
  jobs: [
    job('produce', {
      runsOn: on,
      steps: [
        step('set', async ({ $, setSecretOutput }) => {
          console.log('before ${TOKEN}');
          setSecretOutput('DEPLOY_TOKEN', '${TOKEN}');
          setSecretOutput('OTHER', '${FIRST}');
          setSecretOutput('OTHER', '${SECOND}');
          console.log('after ${TOKEN} ${FIRST}');
          await $\`echo "shell ${TOKEN}"\`;
        }),
        step('later', { continueOnError: true, run: async ({ log }) => {
          log.info('later ${TOKEN} ' + Buffer.from('${TOKEN}').toString('base64'));
          throw new Error('failed with ${TOKEN}');
        } }),
      ],
      cleanup: ({ setSecretOutput }) => setSecretOutput('FROM_HOOK', '${HOOK_VALUE}'),
    }),
    job('none', { runsOn: on, run: async () => {} }),
    job('limits', {
      runsOn: on,
      run: ({ setSecretOutput }) => {
        const names = Array.from({ length: 20 }, (_, i) => 'OUT_' + String(i).padStart(2, '0'));
        for (const name of names) setSecretOutput(name, 'value-of-' + name);
        const report = {
          again: attempt(() => setSecretOutput('OUT_00', 'replaced-value')),
          more: attempt(() => setSecretOutput('OUT_20', 'one-too-many')),
          big: attempt(() => setSecretOutput('BIG', 'x'.repeat(70000))),
          wide: attempt(() => setSecretOutput('WIDE', '\\u00e9'.repeat(32769))),
          largest: attempt(() => setSecretOutput('OUT_01', 'y'.repeat(65536))),
          digit: attempt(() => setSecretOutput('1ABC', 'some-value')),
          dash: attempt(() => setSecretOutput('A-B', 'some-value')),
          number: attempt(() => setSecretOutput(42, 'some-value')),
          empty: attempt(() => setSecretOutput('EMPTY', '')),
          notString: attempt(() => setSecretOutput('NUMBER', 42)),
        };
        console.log(JSON.stringify(report));
      },
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job) => execute(project, 'fixture', { workflow: 'outputs', job });

const NAME_ERROR =
  'TypeError: setSecretOutput: the name must be an environment variable name such as DEPLOY_TOKEN (letters, digits and _, not starting with a digit)';

describe('setSecretOutput', { concurrency: true }, () => {
  test('job.complete carries the values (the last one set for a name, hooks included)', async () => {
    const result = await run('produce');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.job.status, 'failed');
    assert.deepEqual(result.job.secretOutputs, { DEPLOY_TOKEN: TOKEN, OTHER: SECOND, FROM_HOOK: HOOK_VALUE });
    assert.equal('secretOutputs' in (await run('none')).job, false);
  });

  test('a value is masked from the moment it is set: logs, $ output and thrown errors', async () => {
    const result = await run('produce');
    // Printed before it was set, the value was not a secret yet.
    assert.deepEqual(result.linesOf(0), [`before ${TOKEN}`, 'after *** ***', 'shell ***']);
    assert.equal(result.linesOf(1)[0], 'later *** ***');
    assert.equal(result.linesOf(1)[1], 'Error: failed with ***');
    assert.deepEqual(result.step('later').error, { message: 'failed with ***' });
    const before = result.messages.findIndex((m) => m.line === `before ${TOKEN}`);
    const { secretOutputs, ...complete } = result.job;
    for (const message of [...result.messages.slice(before + 1, -1), complete]) {
      assert.ok(!JSON.stringify(message).includes(TOKEN), JSON.stringify(message));
    }
  });

  test('at most 20 names per job, 65536 bytes per value; names and values are checked', async () => {
    const result = await run('limits');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    const names = Array.from({ length: 20 }, (_, i) => `OUT_${String(i).padStart(2, '0')}`);
    assert.deepEqual(JSON.parse(result.linesOf(0)[0]), {
      again: 'no error',
      more: `RangeError: setSecretOutput: at most 20 secret outputs per job (already set: ${names.join(', ')})`,
      big: "RangeError: setSecretOutput: 'BIG' is 70000 bytes; at most 65536",
      wide: "RangeError: setSecretOutput: 'WIDE' is 65538 bytes; at most 65536",
      largest: 'no error',
      digit: NAME_ERROR,
      dash: NAME_ERROR,
      number: NAME_ERROR,
      empty: "TypeError: setSecretOutput: the value of 'EMPTY' must be a non-empty string",
      notString: "TypeError: setSecretOutput: the value of 'NUMBER' must be a non-empty string",
    });
    const outputs = result.job.secretOutputs;
    assert.deepEqual(Object.keys(outputs), names);
    assert.equal(outputs.OUT_00, 'replaced-value');
    assert.equal(outputs.OUT_01, 'y'.repeat(65536));
  });
});
