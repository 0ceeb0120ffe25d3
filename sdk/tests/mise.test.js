// The init presets in the SDK: how `'mise'`, `{mise: {...}}` and `'auto'` are normalised and
// what is refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeProject, thrown } from './helpers.js';

const f = async () => {};
const project = makeProject({});
after(() => project.cleanup());
let sdk;
before(async () => {
  sdk = await project.importPackage('sdk/index.js');
});

const initOf = (init) => sdk.job('a', { runsOn: 'x', init, run: f }).init;

describe('init presets in the SDK', () => {
  test("'mise', {mise: {}} and {mise: {install, cache}} normalise to one preset spec", () => {
    const defaults = {
      preset: 'mise',
      run: 'mise install',
      shell: 'bash',
      timeout: 600000,
      install: true,
      cache: true,
    };
    assert.deepEqual(initOf('mise'), [defaults]);
    assert.deepEqual(Object.keys(initOf('mise')[0]), ['preset', 'run', 'shell', 'timeout', 'install', 'cache']);
    assert.deepEqual(initOf({ mise: {} }), [defaults]);
    assert.deepEqual(initOf({ mise: { install: false, cache: false } }), [
      { ...defaults, install: false, cache: false },
    ]);
    assert.deepEqual(initOf({ mise: { cache: false } }), [{ ...defaults, cache: false }]);
  });

  test("'auto' is resolved on the agent; presets mix with generic specs in a list", () => {
    assert.deepEqual(initOf('auto'), [{ preset: 'auto', shell: 'bash', timeout: 600000 }]);
    assert.deepEqual(initOf([{ run: 'true' }, 'auto', { mise: {} }]), [
      { run: 'true', shell: 'bash', timeout: 600000 },
      { preset: 'auto', shell: 'bash', timeout: 600000 },
      { preset: 'mise', run: 'mise install', shell: 'bash', timeout: 600000, install: true, cache: true },
    ]);
  });

  test('other strings, unknown mise options and wrong values are refused with the accepted forms', () => {
    const forms = "{run, shell?, timeout?, env?, cache?}, 'mise', {mise: {install?, cache?}} or 'auto'";
    const refused = (init) => thrown(() => sdk.job('a', { runsOn: 'x', init, run: f }));
    assert.deepEqual(refused('nix'), {
      message: `Job "a": init[0] must be ${forms}`,
      suggestion: "to run it as a command: init: { run: 'nix' }",
    });
    assert.deepEqual(refused([{ run: 'true' }, 'mies']), {
      message: `Job "a": init[1] must be ${forms}`,
      suggestion: "did you mean 'mise'?",
    });
    const example = "e.g. init: 'mise' or init: { mise: { install: true, cache: false } }";
    assert.deepEqual(refused({ mise: { instal: true } }), {
      message: "Job \"a\": init[0].mise has no option 'instal' (use install or cache)",
      suggestion: `did you mean 'install'? ${example}`,
    });
    assert.deepEqual(refused({ mise: { cache: 'yes' } }), {
      message: 'Job "a": init[0].mise.cache must be true or false',
      suggestion: example,
    });
    assert.deepEqual(refused({ mise: true }), {
      message: 'Job "a": init[0].mise must be {install?, cache?}',
      suggestion: example,
    });
    assert.deepEqual(refused({ mise: {}, env: { A: '1' } }), {
      message: "Job \"a\": init[0] has no option 'env' next to mise (the preset is {mise: {install?, cache?}} alone)",
      suggestion: "put your own command in an init entry of its own, e.g. init: [{ mise: {} }, { run: './setup.sh' }]",
    });
    assert.match(refused({ mies: {} }).suggestion, /^did you mean 'mise'\? /);
  });
});
