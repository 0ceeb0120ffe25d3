// The init presets: how the SDK normalises `'mise'`, `{mise: {...}}` and `'auto'` and what it
// refuses; on the agent, `'auto'` without a mise config (one line, nothing run), the mise
// preset without mise on PATH (exit 127 with the install hint), its cache (key from the config
// files, mise's data dir, a data dir that cannot be cached), a config file that cannot be read
// and, with mise installed (`KICI_TEST_MISE`, the directory `scripts/mise.sh` prints), a real
// `mise install` whose tools a later init row and a step find on PATH.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SDK_IMPORT, cacheHost, execute, makeProject, thrown } from './helpers.js';

const MISE_BIN = process.env.KICI_TEST_MISE ?? '';
const NO_MISE_CONFIG = 'No mise.toml, .mise.toml, .tool-versions or .config/mise.toml: nothing to set up';
const NO_MISE =
  "the mise preset needs mise on the agent's PATH (https://mise.jdx.dev/installing-mise.html), or use init: { run: ... } with your own setup";
const MISE_TOML = '[tools]\n"npm:cowsay" = "1.6.0"\n';
const OUTSIDE_HOME =
  "[kici] mise's data dir /opt/mise (from MISE_DATA_DIR) is not cached: it is not under $HOME (/home/ci), " +
  'and a cache holds only paths under the checkout or ~/; set MISE_DATA_DIR to a directory under $HOME to cache it';
if (MISE_BIN === '' && process.env.KICI_TEST_REQUIRE_MISE) {
  throw new Error('KICI_TEST_REQUIRE_MISE is set but KICI_TEST_MISE is not');
}
const MISE_SKIP =
  MISE_BIN !== '' && fs.existsSync(path.join(MISE_BIN, 'mise'))
    ? false
    : 'no mise: set KICI_TEST_MISE to the directory ./scripts/mise.sh prints';

const FIXTURE = `${SDK_IMPORT}
const on = 'kici:os:linux';
export default workflow('presets', {
  jobs: [
    job('auto', { runsOn: on, init: 'auto', run: async () => console.log('step ran') }),
    job('mise', { runsOn: on, init: 'mise', run: async () => {} }),
    job('tools', {
      runsOn: on,
      init: ['auto', { run: 'command -v cowsay' }],
      steps: [step('moo', async ({ $ }) => { await $\`cowsay moo\`; })],
    }),
  ],
});
`;

const f = async () => {};
const temp = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
/** The expected cache key: the platform, then SHA-256 over `<name>\0<content>` of each file, in order. */
const keyOf = (files) => {
  const hash = createHash('sha256');
  for (const [name, content] of files) hash.update(`${name}\0${content}`);
  return `mise-${process.platform}-${process.arch}-${hash.digest('hex').slice(0, 16)}`;
};

// A PATH with bash and nothing else, so no mise whatever the machine has installed; and a fake
// mise that leaves a mark when anything runs it.
const bare = temp('kici-mise-path-');
fs.symlinkSync(execFileSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim(), path.join(bare, 'bash'));
const fake = temp('kici-mise-fake-');
const mark = path.join(fake, 'ran');
fs.symlinkSync(path.join(bare, 'bash'), path.join(fake, 'bash'));
fs.writeFileSync(path.join(fake, 'mise'), `#!/bin/sh\necho "$@" > ${mark}\n`, { mode: 0o755 });

const empty = makeProject({ fixture: FIXTURE });
const configured = makeProject({ fixture: FIXTURE }, { 'mise.toml': MISE_TOML });
const unreadable = makeProject({ fixture: FIXTURE }, { 'mise.toml/oops': '' });
after(() => {
  for (const project of [empty, configured, unreadable]) project.cleanup();
  for (const dir of [bare, fake]) fs.rmSync(dir, { recursive: true, force: true });
});
let sdk;
let mise;
before(async () => {
  sdk = await empty.importPackage('sdk/index.js');
  mise = await empty.importPackage('engine/mise.js');
});

const run = async (project, job, env) => {
  const host = cacheHost();
  const result = await execute(project, 'fixture', { workflow: 'presets', job, env }, host.onMessage);
  return { host, result };
};
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

describe('the mise cache', () => {
  test('the key hashes the config files present with their names, in order; it follows their content', async (t) => {
    const dir = temp('kici-mise-key-');
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (name, content) => {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    };
    const key = async () => mise.miseCacheKey(await mise.miseConfigs(dir));
    assert.equal(await key(), keyOf([]));
    write('.tool-versions', 'node 20\n');
    write('.config/mise.toml', MISE_TOML);
    write('mise.toml', MISE_TOML);
    const first = await key();
    assert.match(first, /^mise-[a-z0-9]+-[a-z0-9]+-[0-9a-f]{16}$/);
    assert.equal(
      first,
      keyOf([
        ['mise.toml', MISE_TOML],
        ['.tool-versions', 'node 20\n'],
        ['.config/mise.toml', MISE_TOML],
      ]),
    );
    assert.equal(await key(), first, 'the same files give the same key');
    write('.tool-versions', 'node 22\n');
    assert.notEqual(await key(), first);
    assert.deepEqual(
      (await mise.miseConfigs(dir)).map(({ name }) => name),
      ['mise.toml', '.tool-versions', '.config/mise.toml'],
    );
  });

  test("the cached path is mise's data dir under $HOME; elsewhere it is not cached, with the reason", () => {
    assert.deepEqual(mise.miseDataPath({ HOME: '/home/ci' }), { path: '~/.local/share/mise' });
    assert.deepEqual(mise.miseDataPath({ HOME: '/home/ci', MISE_DATA_DIR: '/home/ci/tools/mise' }), {
      path: '~/tools/mise',
    });
    assert.deepEqual(mise.miseDataPath({ HOME: '/home/ci', XDG_DATA_HOME: '/home/ci/data' }), {
      path: '~/data/mise',
    });
    assert.deepEqual(mise.miseDataPath({ HOME: '/home/ci', MISE_DATA_DIR: '/opt/mise' }), { warning: OUTSIDE_HOME });
    for (const dir of ['/home/ci', '/home/ci/../cia', 'relative/mise']) {
      assert.ok(mise.miseDataPath({ HOME: '/home/ci', MISE_DATA_DIR: dir }).warning, dir);
    }
    assert.match(mise.miseDataPath({ MISE_DATA_DIR: '/home/ci/mise' }).warning, /\(unset\)/);
  });
});

describe('init presets on the agent', { concurrency: true }, () => {
  test("'auto' without a mise config logs one line and runs nothing", async () => {
    const { host, result } = await run(empty, 'auto', { PATH: fake });
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(
      result.logs.filter((message) => message.stepIndex === 1),
      [{ type: 'log.line', stepIndex: 1, stream: 'log', line: NO_MISE_CONFIG, level: 'info' }],
    );
    assert.equal(fs.existsSync(mark), false, 'mise did not run');
    assert.deepEqual(host.requests, []);
    assert.deepEqual(result.linesOf(0), ['step ran']);
  });

  for (const job of ['auto', 'mise']) {
    test(`'${job}' with a mise.toml and no mise on PATH fails with exit code 127 and the install hint`, async (t) => {
      const home = temp('kici-mise-home-');
      t.after(() => fs.rmSync(home, { recursive: true, force: true }));
      const { host, result } = await run(configured, job, {
        PATH: bare,
        HOME: home,
        MISE_DATA_DIR: path.join(home, 'mise'),
      });
      const key = keyOf([['mise.toml', MISE_TOML]]);
      assert.equal(result.job.status, 'failed');
      assert.equal(result.job.error, "Init 'init:1' failed (exit code 127)");
      assert.deepEqual(result.step('init:1').error, {
        message: 'Command failed with exit code 127: mise preset (mise trust, mise install, mise bin-paths)',
        exitCode: 127,
      });
      assert.deepEqual(
        result.logs.filter((message) => message.stepIndex === 1).map(({ stream, line }) => [stream, line]),
        [
          ['log', `Cache not found for key ${key}`],
          ['stderr', NO_MISE],
        ],
      );
      assert.deepEqual(
        host.requests.map(({ op, key: requested, paths }) => [op, requested, paths]),
        [['restore', key, ['~/mise']]],
      );
      assert.equal(result.step('step-1').status, 'skipped');
    });
  }

  test("a data dir outside $HOME is not cached: the row says why and asks the host nothing", async () => {
    const env = { PATH: bare, HOME: '/home/ci', MISE_DATA_DIR: '/opt/mise' };
    const { host, result } = await run(configured, 'mise', env);
    assert.equal(result.job.error, "Init 'init:1' failed (exit code 127)");
    assert.deepEqual(
      result.logs.filter((message) => message.stepIndex === 1).map(({ level, line }) => [level, line]),
      [
        ['warn', OUTSIDE_HOME],
        [undefined, NO_MISE],
      ],
    );
    assert.deepEqual(host.requests, []);
  });

  test('a config file that cannot be read fails the row', async () => {
    const { host, result } = await run(unreadable, 'auto', { PATH: fake });
    assert.equal(result.job.status, 'failed');
    const message = "Init 'init:1' failed: EISDIR: illegal operation on a directory, read";
    assert.deepEqual(result.step('init:1').error, { message });
    assert.equal(result.job.error, message);
    assert.equal(fs.existsSync(mark), false, 'mise did not run');
    assert.deepEqual(host.requests, []);
  });

  test(
    'with mise installed, the tools of mise.toml reach the later init rows and the steps, and the data dir is cached',
    { skip: MISE_SKIP },
    async (t) => {
      const home = temp('kici-mise-home-');
      t.after(() => fs.rmSync(home, { recursive: true, force: true }));
      const { host, result } = await run(configured, 'tools', {
        PATH: `${MISE_BIN}:${process.env.PATH}`,
        HOME: home,
        MISE_DATA_DIR: path.join(home, 'mise-data'),
        MISE_NPM_PACKAGE_MANAGER: 'npm',
      });
      assert.equal(result.job.status, 'success', JSON.stringify(result.logs.map((message) => message.line)));
      const key = keyOf([['mise.toml', MISE_TOML]]);
      const initLines = result.linesOf(1);
      assert.equal(initLines[0], `Cache not found for key ${key}`);
      assert.match(initLines.at(-1), new RegExp(`^Cache saved with key ${key} \\(\\d+ bytes\\)$`));
      // Under CI=true mise colours its output, so the tool's name is matched without the colours.
      const plain = initLines.map((line) => line.replace(/\u001b\[[0-9;]*m/g, ''));
      assert.ok(
        plain.some((line) => line.includes('npm:cowsay@1.6.0')),
        `mise says what it installed: ${JSON.stringify(plain)}`,
      );
      const installed = path.join(home, 'mise-data', 'installs', 'npm-cowsay', '1.6.0', 'bin', 'cowsay');
      assert.deepEqual(result.linesOf(2), [installed], 'a later init row finds the tool');
      assert.ok(result.linesOf(0).some((line) => line.includes('< moo >')), result.linesOf(0).join('\n'));
      assert.deepEqual(
        host.requests.map(({ op, key: requested, paths }) => [op, requested, paths]),
        [
          ['restore', key, ['~/mise-data']],
          ['save', key, ['~/mise-data']],
        ],
      );
    },
  );
});
