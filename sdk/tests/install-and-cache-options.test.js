// SDK validation of the workflow install options (`registries`, `installEnv`) and of cache specs
// (`normalizeCacheSpecs`, a job's, a step's and an init spec's `cache`): normalised values and the
// error texts with their suggestions, called in-process (describe.test.js checks the call sites).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeProject, thrown } from './helpers.js';

const project = makeProject({});
after(() => project.cleanup());
let sdk;
let internal;
before(async () => {
  sdk = await project.importPackage('sdk/index.js');
  internal = await project.importPackage('sdk/internal.js');
});

const f = async () => {};
const fail = (message, suggestion) => Object.assign(new Error(message), { suggestion });
const simpleJob = () => sdk.job('a', { runsOn: 'x', run: f });
const workflowWith = (options) => sdk.workflow('w', { jobs: [simpleJob()], ...options });

describe('cache specs', () => {
  test('a spec or a list of them is normalised; single strings become lists; empty restoreKeys are left out', () => {
    assert.deepEqual(internal.normalizeCacheSpecs({ key: 'npm', paths: 'node_modules' }, fail), [
      { key: 'npm', paths: ['node_modules'] },
    ]);
    assert.deepEqual(
      internal.normalizeCacheSpecs(
        [
          { key: 'a', paths: ['./a', 'b/c', '~/.npm', '~/'], restoreKeys: 'a-' },
          { key: 'b', paths: ['b'], restoreKeys: [] },
        ],
        fail,
      ),
      [
        { key: 'a', paths: ['./a', 'b/c', '~/.npm', '~/'], restoreKeys: ['a-'] },
        { key: 'b', paths: ['b'] },
      ],
    );
    assert.deepEqual(internal.normalizeCacheSpecs([], fail), []);
  });

  test('invalid specs are refused with the path to the problem', () => {
    const cases = [
      [42, 'cache must be {key, paths, restoreKeys?}'],
      [[{ key: 'a', paths: 'a' }, 'b'], 'cache[1] must be {key, paths, restoreKeys?}'],
      [{ paths: ['a'] }, 'cache.key must be a non-empty string'],
      [{ key: '', paths: ['a'] }, 'cache.key must be a non-empty string'],
      [{ key: 'k' }, 'cache.paths must be a non-empty list of paths'],
      [{ key: 'k', paths: [] }, 'cache.paths must be a non-empty list of paths'],
      [{ key: 'k', paths: ['a', ''] }, "cache.paths[1] must be relative to the checkout or start with ~/, without '..', got ''"],
      [{ key: 'k', paths: ['/etc'] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got '/etc'"],
      [{ key: 'k', paths: ['a/../../b'] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got 'a/../../b'"],
      [{ key: 'k', paths: ['~/../x'] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got '~/../x'"],
      [{ key: 'k', paths: ['~root/x'] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got '~root/x'"],
      [{ key: 'k', paths: ['~//etc'] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got '~//etc'"],
      [{ key: 'k', paths: [7] }, "cache.paths[0] must be relative to the checkout or start with ~/, without '..', got 7"],
      [{ key: 'k', paths: ['a'], restoreKeys: ['a-', ''] }, 'cache.restoreKeys must be a list of non-empty key prefixes'],
    ];
    for (const [value, message] of cases) {
      assert.equal(thrown(() => internal.normalizeCacheSpecs(value, fail)).message, message, JSON.stringify(value));
    }
  });

  test('an unknown option is refused with a did-you-mean suggestion when one is close', () => {
    assert.deepEqual(thrown(() => internal.normalizeCacheSpecs({ key: 'k', paths: ['a'], restorekeys: ['a'] }, fail)), {
      message: "cache has no option 'restorekeys' (use key, paths or restoreKeys)",
      suggestion:
        "did you mean 'restoreKeys'? e.g. cache: { key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: ['npm-'] }",
    });
    assert.doesNotMatch(
      thrown(() => internal.normalizeCacheSpecs({ key: 'k', paths: ['a'], compression: 'zstd' }, fail)).suggestion,
      /did you mean/,
    );
  });

  test('where names the option in the messages', () => {
    assert.equal(
      thrown(() => internal.normalizeCacheSpecs({ key: 'k', paths: '/x' }, fail, 'spec')).message,
      "spec.paths[0] must be relative to the checkout or start with ~/, without '..', got '/x'",
    );
  });

  test("a job's cache and an init spec's cache are normalised lists; [] is no cache", () => {
    const withCache = sdk.job('a', {
      runsOn: 'x',
      init: [{ run: 'true' }, { run: 'mise install', cache: { key: 'mise', paths: '~/.local/share/mise' } }],
      cache: { key: 'npm', paths: 'node_modules' },
      run: f,
    });
    assert.deepEqual(withCache.cache, [{ key: 'npm', paths: ['node_modules'] }]);
    assert.deepEqual(withCache.init, [
      { run: 'true', shell: 'bash', timeout: 600000 },
      { run: 'mise install', shell: 'bash', timeout: 600000, cache: [{ key: 'mise', paths: ['~/.local/share/mise'] }] },
    ]);
    const empty = sdk.job('b', { runsOn: 'x', init: { run: 'true', cache: [] }, cache: [], run: f });
    assert.equal(empty.cache, undefined);
    assert.deepEqual(empty.init, [{ run: 'true', shell: 'bash', timeout: 600000 }]);
    assert.equal(
      thrown(() => sdk.job('c', { runsOn: 'x', init: { run: 'true', cache: [{ key: 'k' }] }, run: f })).message,
      'Job "c": init[0].cache[0].paths must be a non-empty list of paths',
    );
    assert.equal(
      thrown(() => sdk.job('d', { runsOn: 'x', init: { run: 'true', cahce: {} }, run: f })).suggestion.startsWith(
        "did you mean 'cache'? ",
      ),
      true,
    );
  });

  test("a step's cache is a normalised list; [] is no cache; errors name the step", () => {
    assert.deepEqual(sdk.step('s', { cache: { key: 'out', paths: 'out', restoreKeys: 'out-' }, run: f }).cache, [
      { key: 'out', paths: ['out'], restoreKeys: ['out-'] },
    ]);
    assert.equal(sdk.step('s', { cache: [], run: f }).cache, undefined);
    assert.equal(sdk.step('s', f).cache, undefined);
    assert.equal(
      thrown(() => sdk.step('s', { cache: [{ key: 'k', paths: 'p' }, { key: 'k' }], run: f })).message,
      'Step "s": cache[1].paths must be a non-empty list of paths',
    );
  });
});

describe('registries and installEnv', () => {
  test('registries are normalised: alwaysAuth filled in, scope only when given; a single entry is a list', () => {
    const { registries, installEnv } = workflowWith({
      registries: [
        { url: 'https://npm.pkg.github.com/', scope: '@acme', tokenSecret: 'production:GITHUB_NPM', alwaysAuth: false },
        { url: 'http://registry.local:4873', tokenSecret: 'ci:NPM_TOKEN' },
      ],
      installEnv: 'ci:NPM_TOKEN',
    });
    assert.deepEqual(registries, [
      { url: 'https://npm.pkg.github.com/', scope: '@acme', tokenSecret: 'production:GITHUB_NPM', alwaysAuth: false },
      { url: 'http://registry.local:4873', tokenSecret: 'ci:NPM_TOKEN', alwaysAuth: true },
    ]);
    assert.deepEqual(installEnv, ['ci:NPM_TOKEN']);
    assert.deepEqual(workflowWith({ registries: { url: 'https://r.example/', tokenSecret: 'a:B' } }).registries, [
      { url: 'https://r.example/', tokenSecret: 'a:B', alwaysAuth: true },
    ]);
    const none = workflowWith({ registries: [], installEnv: [] });
    assert.equal(none.registries, undefined);
    assert.equal(none.installEnv, undefined);
  });

  test('invalid registries are refused at import', () => {
    const registry = (fields) => ({ url: 'https://r.example/', tokenSecret: 'ci:NPM_TOKEN', ...fields });
    const cases = [
      [['https://r.example/'], 'registries[0] must be {url, scope?, tokenSecret, alwaysAuth?}'],
      [[registry({ token: 'x' })], "registries[0] has no option 'token' (use url, scope, tokenSecret or alwaysAuth)"],
      [[registry({ url: 'registry.npmjs.org' })], "registries[0].url must be an http or https URL, got 'registry.npmjs.org'"],
      [[registry({ url: 'ftp://r.example/' })], "registries[0].url must be an http or https URL, got 'ftp://r.example/'"],
      [[registry({ url: undefined })], 'registries[0].url must be an http or https URL, got undefined'],
      [[registry({ scope: 'acme' })], "registries[0].scope must be an npm scope such as '@acme', got 'acme'"],
      [[registry({ scope: '@Acme' })], "registries[0].scope must be an npm scope such as '@acme', got '@Acme'"],
      [[registry({ tokenSecret: 'NPM_TOKEN' })], "registries[0].tokenSecret must be '<environment>:<secret name>', got 'NPM_TOKEN'"],
      [[registry({ tokenSecret: ':NPM_TOKEN' })], "registries[0].tokenSecret must be '<environment>:<secret name>', got ':NPM_TOKEN'"],
      [[registry({ tokenSecret: 'ci:' })], "registries[0].tokenSecret must be '<environment>:<secret name>', got 'ci:'"],
      [[registry({ alwaysAuth: 'yes' })], 'registries[0].alwaysAuth must be true or false'],
      [
        [registry({ scope: '@a' }), registry(), registry({ url: 'https://other.example/' })],
        'registries[2] has no scope, like registries[1]: only one registry can serve unscoped packages',
      ],
      [[registry({ scope: '@a' }), registry({ scope: '@a' })], "registries[1] has scope '@a', like registries[0]"],
    ];
    for (const [registries, message] of cases) {
      assert.equal(thrown(() => workflowWith({ registries })).message, `Workflow "w": ${message}`, message);
    }
    assert.match(thrown(() => workflowWith({ registries: [registry({ tokensecret: 'a:b' })] })).suggestion, /^did you mean 'tokenSecret'\? /);
  });

  test('invalid installEnv entries are refused at import', () => {
    const cases = [
      [['NPM_TOKEN'], "installEnv[0] must be '<environment>:<secret name>', got 'NPM_TOKEN'"],
      [['ci:A', 42], "installEnv[1] must be '<environment>:<secret name>', got 42"],
      [['ci:NPM-TOKEN'], "installEnv[0]: 'NPM-TOKEN' is not an environment variable name (letters, digits and _, not starting with a digit)"],
      [['ci:A', 'ci:A'], 'installEnv[1] sets A again (installEnv[0] sets it)'],
      [['ci:A', 'production:A'], 'installEnv[1] sets A again (installEnv[0] sets it)'],
    ];
    for (const [installEnv, message] of cases) {
      assert.equal(thrown(() => workflowWith({ installEnv })).message, `Workflow "w": ${message}`, message);
    }
  });
});
