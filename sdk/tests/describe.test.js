// describe: the exact WorkflowDescription JSON (naming, export keys, triggers, labels, needs,
// steps, dynamicJob() entries, environments, env functions, approval, init, caches, registries
// and installEnv), the dynamicJob() value, SDK validation errors with location and suggestion,
// and modules that fail to import.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { SDK_IMPORT, describeModules, makeProject, positionOf, withSourceMap } from './helpers.js';

const HELLO = `${SDK_IMPORT}
export default workflow('hello-world', {
  on: push(),
  jobs: [
    job('greet', {
      runsOn: 'kici:os:linux',
      steps: [
        step('say-hello', async ({ $ }) => {
          await $\`echo "Hello, World!"\`;
        }),
      ],
    }),
  ],
});
`;

const SHAPES = `${SDK_IMPORT}
const build = job({ runsOn: ['linux', 'gpu-*', /^arm(64)?$/i], run: async () => {} });
const test = job({
  runsOn: { labels: 'linux', exclude: ['kici:agent:*'], pick: 'any' },
  needs: [build, { name: 'lint', when: 'always' }, { name: build, when: ['success', 'skipped'] }],
  matrix: { os: ['linux'], node: ['18', '20'] },
  exclude: [{ node: '18' }],
  env: { CI: 'true' },
  checkout: false,
  timeout: 60000,
  gracePeriod: 30,
  onSuccess: onSuccess(async () => {}),
  cleanup: { run: async () => {}, timeout: 1000 },
  steps: [
    async () => {},
    step('named', { run: async () => {}, retry: 3, continueOnError: true, timeout: 5000 }),
    parallel([async () => {}, step('lint', async () => {})], { maxParallel: 2 }),
    parallel([step(async () => {})], { name: 'checks', failFast: false }),
  ],
});
const lint = job('lint', { runsOn: 'linux', rules: [rule('main only', () => true)], run: async () => {} });

export default [
  workflow('first', { on: [push({ branches: ['main', /^release\\//], tags: 'v*', paths: ['src/**', '!docs/**'] })], jobs: [build, test, lint] }),
  workflow('second', { on: [pr({ target: 'main' }), tag({ patterns: /^v\\d+$/ }), dispatch({ types: 'deploy' })], jobs: [lint], description: 'two', hashFiles: 'package.json', timeout: 600000, cleanup: async () => {} }),
];
export const named = workflow('third', { jobs: [lint], rules: [skip('never', () => false)] });
export const sameAgain = named; // described once, as #named (namespaces list exports alphabetically)
`;

const MIXED = `${SDK_IMPORT}
const build = job({ runsOn: 'linux', run: async () => {} });
export default workflow('mixed', {
  jobs: [
    build,
    dynamicJob(async () => []),
    job({ runsOn: 'linux', needs: build, run: async () => {} }),
    dynamicJob('pkgs', { needs: [build, { name: 'lint', when: 'always' }], generate: async () => [] }),
    job('lint', { runsOn: 'linux', run: async () => {} }),
    dynamicJob({ group: 'docs', needs: [], generate: () => [] }),
  ],
});
`;

const ENVIRONMENTS = `${SDK_IMPORT}
const f = async () => {};
const pickEnvironment = (event) => (event.targetBranch === 'main' ? 'production' : 'staging');
export default workflow('deploys', {
  jobs: [
    job('single', { runsOn: 'linux', environment: 'production', env: { A: '1' }, approval: true, run: f }),
    job('many', {
      runsOn: 'linux',
      checkout: false,
      environments: ['audit', pickEnvironment],
      env: (event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'staging' }),
      approval: [{ team: 'ops' }, { user: 'alice' }],
      run: f,
    }),
    job('object', {
      runsOn: 'linux',
      environment: pickEnvironment,
      approval: { approvers: [{ user: 'bob' }], reason: 'production deploy', timeout: 3600 },
      run: f,
    }),
    job('plain', { runsOn: 'linux', approval: false, run: f }),
  ],
});
`;

const INIT = `${SDK_IMPORT}
const f = async () => {};
export default workflow('inits', {
  jobs: [
    job('one', { runsOn: 'linux', checkout: false, init: { run: 'mise install' }, env: { A: '1' }, run: f }),
    job('many', {
      runsOn: 'linux',
      init: [{ run: './setup.sh', shell: 'sh', timeout: 60000, env: { MISE_YES: '1' } }, { run: 'make tools' }],
      run: f,
    }),
    job('none', { runsOn: 'linux', init: false, run: f }),
    job('empty', { runsOn: 'linux', init: [], run: f }),
    job('presets', { runsOn: 'linux', init: ['auto', { mise: { cache: false } }, { run: 'make tools' }], run: f }),
  ],
});
`;

const CACHES = `${SDK_IMPORT}
const f = async () => {};
export default workflow('caches', {
  registries: [
    { url: 'https://npm.pkg.github.com/', scope: '@acme', tokenSecret: 'production:GITHUB_NPM', alwaysAuth: false },
    { url: 'https://registry.npmjs.org/', tokenSecret: 'ci:NPM_TOKEN' },
  ],
  installEnv: ['ci:NPM_TOKEN', 'ci:SENTRY_AUTH'],
  jobs: [
    job('one', {
      runsOn: 'linux',
      init: { run: 'mise install', cache: { key: 'mise-v1', paths: '~/.local/share/mise' } },
      cache: { key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: 'npm-' },
      run: f,
    }),
    job('many', { runsOn: 'linux', cache: [{ key: 'a', paths: ['a'] }, { key: 'b', paths: ['./b'], restoreKeys: [] }], run: f }),
    job('none', { runsOn: 'linux', cache: [], run: f }),
  ],
});
export const plain = workflow('plain', { registries: [], installEnv: [], jobs: [job('x', { runsOn: 'linux', run: f })] });
`;

const NO_RUNS_ON = `${SDK_IMPORT}
export default workflow('w', {
  jobs: [
    job('build', { steps: [async () => {}] }),
  ],
});
`;

const THROWS = `${SDK_IMPORT}
const ready = true;
if (ready) throw new Error('boom at import');
`;

const project = makeProject({
  hello: HELLO,
  shapes: SHAPES,
  throws: THROWS,
  empty: 'export const answer = 42;\n',
  noRunsOn: NO_RUNS_ON,
  mixed: MIXED,
  environments: ENVIRONMENTS,
  init: INIT,
  caches: CACHES,
});
after(() => project.cleanup());

const TRIGGERS =
  'push(), pr(), tag(), dispatch(), schedule(), kiciEvent(), workflowComplete(), jobComplete() or genericWebhook()';

const INVALID = [
  [
    'runAndSteps',
    "job('a', { runsOn: 'x', run: f, steps: [f] })",
    'Job "a": use either run or steps, not both',
    'job(',
  ],
  ['noSteps', "job('a', { runsOn: 'x' })", 'Job "a": steps is required (or run for a single step)', 'job('],
  ['emptyParallel', 'parallel([])', 'parallel() needs at least one step', 'parallel('],
  ['nestedParallel', 'parallel([f, parallel([f])])', 'parallel() groups cannot be nested', 'parallel([f,'],
  [
    'duplicateChild',
    "job('a', { runsOn: 'x', steps: [f, parallel([step('x', f), step('x', f)])] })",
    'parallel group "parallel-1": duplicate step name "x"',
    'parallel(',
  ],
  ['unnamedWorkflow', "workflow('', { jobs: [] })", 'workflow() needs a name', 'workflow('],
  ['noJobs', "workflow('w', { jobs: [] })", 'Workflow "w": jobs must be a non-empty array', 'workflow('],
  ['maxParallelZero', 'parallel([f], { maxParallel: 0 })', 'maxParallel must be >= 1', 'parallel('],
  [
    'stringTrigger',
    "workflow('w', { on: 'push', jobs: [job('a', { runsOn: 'x', run: f })] })",
    `Workflow "w": on must be triggers created with ${TRIGGERS}, got 'push'`,
    'workflow(',
  ],
  [
    'uncalledTrigger',
    "workflow('w', { on: [push(), pr], jobs: [job('a', { runsOn: 'x', run: f })] })",
    `Workflow "w": on must be triggers created with ${TRIGGERS}, got function`,
    'workflow(',
  ],
  [
    'workflowRule',
    "workflow('w', { rules: ['main'], jobs: [job('a', { runsOn: 'x', run: f })] })",
    'Workflow "w": rules must be created with rule() or skip()',
    'workflow(',
  ],
  [
    'jobRuleFunction',
    "job('a', { runsOn: 'x', rules: [() => true], run: f })",
    'Job "a": rules must be created with rule() or skip()',
    'job(',
  ],
  [
    'stepRuleFunction',
    "step('s', { rules: () => true, run: f })",
    'Step "s": rules must be created with rule() or skip()',
    'step(',
  ],
  [
    'workflowTimeout',
    "workflow('w', { timeout: NaN, jobs: [job('a', { runsOn: 'x', run: f })] })",
    'Workflow "w": timeout must be a positive integer (ms)',
    'workflow(',
  ],
  ['jobTimeout', "job('a', { runsOn: 'x', timeout: '5m', run: f })", 'Job "a": timeout must be a positive integer (ms)', 'job('],
  [
    'gracePeriod',
    "job('a', { runsOn: 'x', gracePeriod: -1, run: f })",
    'Job "a": gracePeriod must be a non-negative integer (seconds)',
    'job(',
  ],
  ['stepTimeout', "step('s', { timeout: 0, run: f })", 'Step "s": timeout must be a positive integer (ms)', 'step('],
  ['maxAttempts', "step('s', { retry: 0, run: f })", 'Step "s": retry.maxAttempts must be an integer >= 1', 'step('],
  [
    'retryDelay',
    "step('s', { retry: { maxAttempts: 2, delayMs: 1.5 }, run: f })",
    'Step "s": retry.delayMs must be a non-negative integer (ms)',
    'step(',
  ],
  [
    'retryMaxDelay',
    "step('s', { retry: { maxAttempts: 2, maxDelayMs: -1 }, run: f })",
    'Step "s": retry.maxDelayMs must be a non-negative integer (ms)',
    'step(',
  ],
  [
    'hookTimeout',
    "job('a', { runsOn: 'x', run: f, cleanup: { run: f, timeout: -5 } })",
    'cleanup hook: timeout must be a positive integer (ms)',
    'job(',
  ],
  ['hookFactoryTimeout', 'onSuccess({ run: f, timeout: 0 })', 'onSuccess hook: timeout must be a positive integer (ms)', 'onSuccess('],
  [
    'notAJob',
    "workflow('w', { jobs: [job('a', { runsOn: 'x', run: f }), f] })",
    'Workflow "w": jobs[1] is not a job (use job() or dynamicJob())',
    'workflow(',
  ],
  ['noGenerator', "dynamicJob('pkgs')", 'dynamicJob() needs a generator function', 'dynamicJob('],
  ['generatorNotFunction', 'dynamicJob({ generate: 42 })', 'dynamicJob() needs a generator function', 'dynamicJob('],
  ['emptyGroup', "dynamicJob('', f)", 'dynamicJob() group must be a non-empty string', 'dynamicJob('],
  [
    'dynamicNeeds',
    "dynamicJob('pkgs', { needs: [42], generate: f })",
    'Dynamic job "pkgs": needs entries must be a job, a job name or {name, when}',
    'dynamicJob(',
  ],
  [
    'dynamicNeedsWhen',
    "dynamicJob({ needs: { name: 'a', when: 'sometimes' }, generate: f })",
    `Dynamic job "(unnamed)": needs when must be 'on-success', 'always', 'on-skip', 'on-failure' or a list of job statuses`,
    'dynamicJob(',
  ],
  [
    'nestedMatrix',
    "job('a', { runsOn: 'x', matrix: [['a']], run: f })",
    'Job "a": matrix must be a string[], a Record<string, string[]> or a function',
    'job(',
  ],
  [
    'environmentBoth',
    "job('a', { runsOn: 'x', environment: 'production', environments: ['audit'], run: f })",
    'Job "a": use either environment or environments, not both',
    'job(',
  ],
  [
    'environmentEmpty',
    "job('a', { runsOn: 'x', environment: '', run: f })",
    'Job "a": environment must be a non-empty string or a function (event) => string',
    'job(',
  ],
  [
    'environmentsEntry',
    "job('a', { runsOn: 'x', environments: ['audit', 42], run: f })",
    'Job "a": environments[1] must be a non-empty string or a function (event) => string',
    'job(',
  ],
  [
    'environmentsNotList',
    "job('a', { runsOn: 'x', environments: 'audit', run: f })",
    'Job "a": environments must be an array of environment names or functions (event) => string',
    'job(',
  ],
  [
    'envString',
    "job('a', { runsOn: 'x', env: 'NODE_ENV=production', run: f })",
    'Job "a": env must be an object or a function (event) => object',
    'job(',
  ],
  [
    'approvalString',
    "job('a', { runsOn: 'x', approval: 'ops', run: f })",
    'Job "a": approval must be true, a list of approvers or {approvers, reason?, timeout?}',
    'job(',
  ],
  [
    'approvalClause',
    "job('a', { runsOn: 'x', approval: [{ user: 'alice', team: 'ops' }], run: f })",
    `Job "a": approval[0] must be {user: '<login>'} or {team: '<team>'}`,
    'job(',
  ],
  [
    'approvalObjectClause',
    "job('a', { runsOn: 'x', approval: { approvers: [{ team: 'ops' }, { group: 'x' }] }, run: f })",
    `Job "a": approval.approvers[1] must be {user: '<login>'} or {team: '<team>'}`,
    'job(',
  ],
  [
    'approvalEmptyUser',
    "job('a', { runsOn: 'x', approval: [{ user: '' }], run: f })",
    `Job "a": approval[0] must be {user: '<login>'} or {team: '<team>'}`,
    'job(',
  ],
  [
    'approvalUnknownKey',
    "job('a', { runsOn: 'x', approval: { approver: [{ user: 'alice' }] }, run: f })",
    "Job \"a\": approval has no option 'approver' (use approvers, reason or timeout)",
    'job(',
  ],
  [
    'approvalTimeout',
    "job('a', { runsOn: 'x', approval: { approvers: [], timeout: 1.5 }, run: f })",
    'Job "a": approval.timeout must be a positive integer (seconds)',
    'job(',
  ],
  [
    'approvalReason',
    "job('a', { runsOn: 'x', approval: { reason: '' }, run: f })",
    'Job "a": approval.reason must be a non-empty string',
    'job(',
  ],
  [
    'approvalWhen',
    "job('a', { runsOn: 'x', approval: { when: 'sometimes' }, run: f })",
    "Job \"a\": approval.when must be 'always'",
    'job(',
  ],
  [
    'approvalDrift',
    "job('a', { runsOn: 'x', approval: { approvers: [{ team: 'ops' }], when: 'drift' }, run: f })",
    "Job \"a\": approval when 'drift' needs a check step, which this build does not implement",
    'job(',
    'E109',
  ],
  [
    'initEmptyRun',
    "job('a', { runsOn: 'x', init: [{ run: 'true' }, { run: '  ' }], run: f })",
    'Job "a": init[1].run must be a non-empty command string',
    'job(',
  ],
  [
    'initUnknownKey',
    "job('a', { runsOn: 'x', init: { run: 'true', cwd: 'tools' }, run: f })",
    "Job \"a\": init[0] has no option 'cwd' (use run, shell, timeout, env or cache)",
    'job(',
  ],
  [
    'initString',
    "job('a', { runsOn: 'x', init: 'npm ci', run: f })",
    "Job \"a\": init[0] must be {run, shell?, timeout?, env?, cache?}, 'mise', {mise: {install?, cache?}} or 'auto'",
    'job(',
  ],
  [
    'initShell',
    "job('a', { runsOn: 'x', init: { run: 'true', shell: 'zsh' }, run: f })",
    "Job \"a\": init[0].shell must be 'bash' or 'sh'",
    'job(',
  ],
  [
    'initTimeout',
    "job('a', { runsOn: 'x', init: { run: 'true', timeout: 0 }, run: f })",
    'Job "a": init[0].timeout must be a positive integer (ms)',
    'job(',
  ],
  [
    'initEnv',
    "job('a', { runsOn: 'x', init: { run: 'true', env: { N: 1 } }, run: f })",
    'Job "a": init[0].env must be an object of string values',
    'job(',
  ],
  [
    'initMiseUnknownKey',
    "job('a', { runsOn: 'x', init: [{ run: 'true' }, { mise: { install: true, version: '2026' } }], run: f })",
    "Job \"a\": init[1].mise has no option 'version' (use install or cache)",
    'job(',
  ],
  [
    'initMiseInstall',
    "job('a', { runsOn: 'x', init: { mise: { install: 'yes' } }, run: f })",
    'Job "a": init[0].mise.install must be true or false',
    'job(',
  ],
  [
    'initCacheKey',
    "job('a', { runsOn: 'x', init: { run: 'npm ci', cache: { key: '', paths: ['~/.npm'] } }, run: f })",
    'Job "a": init[0].cache.key must be a non-empty string',
    'job(',
  ],
  [
    'cacheUnknownKey',
    "job('a', { runsOn: 'x', cache: [{ key: 'k', paths: ['a'] }, { key: 'k', path: ['a'] }], run: f })",
    "Job \"a\": cache[1] has no option 'path' (use key, paths or restoreKeys)",
    'job(',
  ],
  [
    'cacheAbsolutePath',
    "job('a', { runsOn: 'x', cache: { key: 'k', paths: ['node_modules', '/etc'] }, run: f })",
    "Job \"a\": cache.paths[1] must be relative to the checkout or start with ~/, without '..', got '/etc'",
    'job(',
  ],
  [
    'registryUrl',
    "workflow('w', { registries: [{ url: 'npm.example.com', tokenSecret: 'ci:NPM_TOKEN' }], jobs: [job('a', { runsOn: 'x', run: f })] })",
    "Workflow \"w\": registries[0].url must be an http or https URL, got 'npm.example.com'",
    'workflow(',
  ],
  [
    'registryDefaultTwice',
    "workflow('w', { registries: [{ url: 'https://a.example/', tokenSecret: 'ci:A' }, { url: 'https://b.example/', tokenSecret: 'ci:B' }], jobs: [job('a', { runsOn: 'x', run: f })] })",
    'Workflow "w": registries[1] has no scope, like registries[0]: only one registry can serve unscoped packages',
    'workflow(',
  ],
  [
    'installEnvName',
    "workflow('w', { installEnv: ['ci:NPM-TOKEN'], jobs: [job('a', { runsOn: 'x', run: f })] })",
    "Workflow \"w\": installEnv[0]: 'NPM-TOKEN' is not an environment variable name (letters, digits and _, not starting with a digit)",
    'workflow(',
  ],
];

describe('describe', { concurrency: true }, () => {
  test('hello world is described with the exact lock-file shape', async () => {
    const [file] = await describeModules(project, ['hello']);
    const at = (needle) => ({ file: '.kici/workflows/hello.ts', ...positionOf(HELLO, needle) });
    assert.deepEqual(file, {
      file: '.kici/workflows/hello.ts',
      workflows: [
        {
          name: 'hello-world',
          export: '#default',
          location: at("workflow('hello-world'"),
          triggers: [{ _type: 'push', branches: [], paths: [] }],
          jobs: [
            {
              name: 'greet',
              location: at("job('greet'"),
              runsOn: [{ kind: 'exact', value: 'kici:os:linux' }],
              runsOnPick: 'deterministic',
              needs: [],
              steps: [{ name: 'say-hello', hasOutputs: false, sourceLocation: at("step('say-hello'") }],
              options: ['runsOn', 'steps'],
              stepOptions: [{ name: 'say-hello', options: ['run', 'name'], location: at("step('say-hello'") }],
            },
          ],
          options: ['on', 'jobs'],
        },
      ],
    });
    assert.deepEqual(Object.keys(file.workflows[0]), ['name', 'export', 'location', 'triggers', 'jobs', 'options']);
  });

  test('names, export keys, triggers, labels, needs, matrix and hooks', async () => {
    const [file] = await describeModules(project, ['shapes']);
    const [first, second, third] = file.workflows;
    assert.deepEqual(
      file.workflows.map((described) => [described.name, described.export]),
      [
        ['first', '#default[0]'],
        ['second', '#default[1]'],
        ['third', '#named'],
      ],
    );

    assert.deepEqual(first.triggers, [
      {
        _type: 'push',
        branches: [
          { type: 'glob', pattern: 'main' },
          { type: 'regex', pattern: '^release\\/' },
        ],
        paths: ['src/**', '!docs/**'],
      },
      { _type: 'tag', patterns: [{ type: 'glob', pattern: 'v*' }] },
    ]);
    assert.deepEqual(second.triggers, [
      {
        _type: 'pr',
        events: ['opened', 'synchronize', 'reopened', 'closed'],
        targetBranches: [{ type: 'glob', pattern: 'main' }],
        sourceBranches: [],
        paths: [],
      },
      { _type: 'tag', patterns: [{ type: 'regex', pattern: '^v\\d+$' }] },
      { _type: 'dispatch', types: ['deploy'] },
    ]);
    assert.equal(second.description, 'two');
    assert.deepEqual(second.hashFiles, ['package.json']);
    assert.equal(second.timeout, 600000);
    assert.equal(second.hasCleanup, true);
    assert.deepEqual(third.rules, [{ label: 'never' }]);

    const [build, testJob, lint] = first.jobs;
    assert.equal(build.name, 'job-1');
    assert.equal(testJob.name, 'job-2');
    assert.deepEqual(build.runsOn, [
      { kind: 'exact', value: 'linux' },
      { kind: 'glob', pattern: 'gpu-*' },
      { kind: 'regex', source: '^arm(64)?$', flags: 'i' },
    ]);
    assert.deepEqual(build.steps, [{ name: 'step-1', hasOutputs: false }]);
    assert.deepEqual(lint.rules, [{ label: 'main only' }]);

    const { location, options, stepOptions, ...rest } = testJob;
    assert.ok(options.includes('runsOn') && stepOptions.length === 5, 'option names are described');
    assert.deepEqual(rest, {
      name: 'job-2',
      runsOn: [{ kind: 'exact', value: 'linux' }],
      excludeLabels: [{ kind: 'glob', pattern: 'kici:agent:*' }],
      runsOnPick: 'any',
      needs: ['job-1', { name: 'lint', when: 'always' }, { name: 'job-1', when: ['success', 'skipped'] }],
      steps: [
        { name: 'step-1', hasOutputs: false },
        {
          name: 'named',
          hasOutputs: false,
          continueOnError: true,
          timeout: 5000,
          retry: { maxAttempts: 3, delayMs: 1000, backoff: 'exponential', maxDelayMs: 30000 },
          sourceLocation: { file: '.kici/workflows/shapes.ts', ...positionOf(SHAPES, "step('named'") },
        },
        {
          kind: 'parallel',
          name: 'parallel-1',
          failFast: true,
          maxParallel: 2,
          children: [
            { name: 'step-2', hasOutputs: false },
            {
              name: 'lint',
              hasOutputs: false,
              sourceLocation: { file: '.kici/workflows/shapes.ts', ...positionOf(SHAPES, "step('lint'") },
            },
          ],
        },
        {
          kind: 'parallel',
          name: 'checks',
          failFast: false,
          children: [
            {
              name: 'step-3',
              hasOutputs: false,
              sourceLocation: { file: '.kici/workflows/shapes.ts', ...positionOf(SHAPES, 'step(async') },
            },
          ],
        },
      ],
      matrix: { _type: 'static', values: { os: ['linux'], node: ['18', '20'] } },
      exclude: [{ node: '18' }],
      checkout: false,
      env: { CI: 'true' },
      hasCleanup: true,
      hasOnSuccess: true,
      gracePeriod: 30,
      timeout: 60000,
    });
    assert.deepEqual(location, { file: '.kici/workflows/shapes.ts', ...positionOf(SHAPES, 'job({\n  runsOn: {') });
  });

  test('dynamicJob() entries: index, group, needs and location; static jobs named as before', async () => {
    const [file] = await describeModules(project, ['mixed']);
    const at = (needle) => ({ file: '.kici/workflows/mixed.ts', ...positionOf(MIXED, needle) });
    const jobs = file.workflows[0].jobs;
    assert.deepEqual(
      jobs.map((entry) => entry.name ?? entry._type),
      ['job-1', 'dynamic', 'job-2', 'dynamic', 'lint', 'dynamic'],
    );
    assert.deepEqual(jobs[2].needs, ['job-1']);
    assert.deepEqual(jobs[1], { _type: 'dynamic', index: 1, location: at('dynamicJob(async') });
    assert.deepEqual(jobs[3], {
      _type: 'dynamic',
      index: 3,
      group: 'pkgs',
      needs: ['job-1', { name: 'lint', when: 'always' }],
      location: at("dynamicJob('pkgs'"),
    });
    assert.deepEqual(Object.keys(jobs[3]), ['_type', 'index', 'group', 'needs', 'location']);
    assert.deepEqual(jobs[5], { _type: 'dynamic', index: 5, group: 'docs', location: at('dynamicJob({') });
  });

  test('dynamicGroup() is a needs entry named __group:<name>, with its when', async () => {
    const { dynamicGroup, job, KiciError } = await project.importPackage('sdk/index.js');
    assert.deepEqual(dynamicGroup('pkgs'), { _tag: 'DynamicGroup', group: 'pkgs' });
    assert.ok(Object.isFrozen(dynamicGroup('pkgs')));
    const publish = job('publish', {
      runsOn: 'linux',
      needs: [dynamicGroup('pkgs'), dynamicGroup('docs', { when: 'always' })],
      run: async () => {},
    });
    assert.deepEqual(publish.needs, [
      { target: '__group:pkgs', when: 'on-success' },
      { target: '__group:docs', when: 'always' },
    ]);
    assert.throws(() => dynamicGroup(''), (error) => error instanceof KiciError && /group name/.test(error.message));
    assert.throws(
      () => job('x', { runsOn: 'linux', needs: [dynamicGroup('pkgs', { when: 'sometimes' })], run: async () => {} }),
      /needs when must be/,
    );
  });

  test('dynamicJob() forms give one frozen shape', async () => {
    const { dynamicJob, job } = await project.importPackage('sdk/index.js');
    const generate = () => [];
    const build = job('build', { runsOn: 'linux', run: async () => {} });
    const strip = ({ location, ...rest }) => rest;
    const bare = dynamicJob(generate);
    assert.ok(Object.isFrozen(bare));
    assert.deepEqual(strip(bare), { _tag: 'DynamicJob', generate });
    assert.deepEqual(strip(dynamicJob('pkgs', generate)), { _tag: 'DynamicJob', group: 'pkgs', generate });
    const needs = [
      { target: build, when: 'on-success' },
      { target: 'lint', when: ['success', 'skipped'] },
    ];
    const needsOption = [build, { name: 'lint', when: ['success', 'skipped'] }];
    const expected = { _tag: 'DynamicJob', group: 'pkgs', needs, generate };
    assert.deepEqual(strip(dynamicJob('pkgs', { needs: needsOption, generate })), expected);
    assert.deepEqual(strip(dynamicJob({ group: 'pkgs', needs: needsOption, generate })), expected);
    assert.deepEqual(strip(dynamicJob({ needs: 'lint', generate })), {
      _tag: 'DynamicJob',
      needs: [{ target: 'lint', when: 'on-success' }],
      generate,
    });
  });

  test('environment, environments, env functions and approval are described in order', async () => {
    const [file] = await describeModules(project, ['environments']);
    const [single, many, object, plain] = file.workflows[0].jobs;
    const pick = "(event) => (event.targetBranch === 'main' ? 'production' : 'staging')";
    assert.deepEqual(single.environments, [{ name: 'production' }]);
    assert.deepEqual(single.env, { A: '1' });
    assert.deepEqual(single.approval, { clauses: [], when: 'always' });
    assert.deepEqual(many.environments, [{ name: 'audit' }, { function: pick }]);
    assert.equal(many.env, undefined);
    assert.equal(many.envFunction, "(event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'staging' })");
    assert.deepEqual(many.approval, { clauses: [{ team: 'ops' }, { user: 'alice' }], when: 'always' });
    assert.deepEqual(Object.keys(many), [
      'name',
      'location',
      'runsOn',
      'runsOnPick',
      'needs',
      'steps',
      'checkout',
      'environments',
      'envFunction',
      'approval',
      'options',
      'stepOptions',
    ]);
    assert.deepEqual(object.environments, [{ function: pick }]);
    assert.deepEqual(object.approval, {
      clauses: [{ user: 'bob' }],
      reason: 'production deploy',
      timeoutSeconds: 3600,
      when: 'always',
    });
    assert.deepEqual(Object.keys(object.approval), ['clauses', 'reason', 'timeoutSeconds', 'when']);
    for (const key of ['environments', 'env', 'envFunction', 'approval']) assert.equal(key in plain, false, key);
    assert.deepEqual(plain.options, ['runsOn', 'approval', 'run']);
  });

  test('init is described as a list of specs with shell and timeout filled in', async () => {
    const [file] = await describeModules(project, ['init']);
    const [one, many, none, empty, presets] = file.workflows[0].jobs;
    assert.deepEqual(one.init, [{ run: 'mise install', shell: 'bash', timeout: 600000 }]);
    assert.deepEqual(Object.keys(one).slice(5, 9), ['steps', 'checkout', 'init', 'env']);
    assert.deepEqual(many.init, [
      { run: './setup.sh', shell: 'sh', timeout: 60000, env: { MISE_YES: '1' } },
      { run: 'make tools', shell: 'bash', timeout: 600000 },
    ]);
    assert.deepEqual(Object.keys(many.init[0]), ['run', 'shell', 'timeout', 'env']);
    for (const job of [none, empty]) assert.equal('init' in job, false, job.name);
    assert.deepEqual(none.options, ['runsOn', 'init', 'run']);
  });

  test("the init presets are described normalised: 'auto' as it is, the mise preset with its options", async () => {
    const [file] = await describeModules(project, ['init']);
    const presets = file.workflows[0].jobs[4];
    assert.deepEqual(presets.init, [
      { preset: 'auto', shell: 'bash', timeout: 600000 },
      { preset: 'mise', run: 'mise install', shell: 'bash', timeout: 600000, install: true, cache: false },
      { run: 'make tools', shell: 'bash', timeout: 600000 },
    ]);
    assert.deepEqual(Object.keys(presets.init[1]), ['preset', 'run', 'shell', 'timeout', 'install', 'cache']);
  });

  test('registries, installEnv, job caches and init caches are described normalised', async () => {
    const [file] = await describeModules(project, ['caches']);
    const [caches, plain] = file.workflows;
    assert.deepEqual(caches.registries, [
      { url: 'https://npm.pkg.github.com/', scope: '@acme', tokenSecret: 'production:GITHUB_NPM', alwaysAuth: false },
      { url: 'https://registry.npmjs.org/', tokenSecret: 'ci:NPM_TOKEN', alwaysAuth: true },
    ]);
    assert.deepEqual(Object.keys(caches.registries[0]), ['url', 'scope', 'tokenSecret', 'alwaysAuth']);
    assert.deepEqual(caches.installEnv, ['ci:NPM_TOKEN', 'ci:SENTRY_AUTH']);
    assert.deepEqual(Object.keys(caches), [
      'name',
      'export',
      'location',
      'triggers',
      'jobs',
      'registries',
      'installEnv',
      'options',
    ]);
    assert.deepEqual(caches.options, ['registries', 'installEnv', 'jobs']);
    const [one, many, none] = caches.jobs;
    assert.deepEqual(one.init, [
      {
        run: 'mise install',
        shell: 'bash',
        timeout: 600000,
        cache: [{ key: 'mise-v1', paths: ['~/.local/share/mise'] }],
      },
    ]);
    assert.deepEqual(one.cache, [{ key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: ['npm-'] }]);
    assert.deepEqual(Object.keys(one).slice(5, 8), ['steps', 'init', 'cache']);
    assert.deepEqual(one.options, ['runsOn', 'init', 'cache', 'run']);
    assert.deepEqual(many.cache, [
      { key: 'a', paths: ['a'] },
      { key: 'b', paths: ['./b'] },
    ]);
    assert.equal('cache' in none, false);
    for (const key of ['registries', 'installEnv']) assert.equal(key in plain, false, key);
    assert.deepEqual(plain.options, ['registries', 'installEnv', 'jobs']);
  });

  test('a job without runsOn is an error with message, suggestion and the job() call site', async () => {
    const [file] = await describeModules(project, ['noRunsOn']);
    assert.equal(file.workflows, undefined);
    assert.equal(file.error.message, 'Job "build": one of runsOn or runsOnAll is required');
    assert.equal(file.error.suggestion, "add runsOn, e.g. runsOn: 'kici:os:linux'");
    assert.deepEqual(file.error.location, {
      file: '.kici/workflows/noRunsOn.ts',
      ...positionOf(NO_RUNS_ON, "job('build'"),
    });
  });

  test('a module that throws at import is reported and the other files are still described', async () => {
    const [thrown, hello, empty] = await describeModules(project, ['throws', 'hello', 'empty']);
    assert.equal(thrown.error.message, 'boom at import');
    assert.deepEqual(thrown.error.location, {
      file: '.kici/workflows/throws.ts',
      ...positionOf(THROWS, "new Error('boom"),
    });
    assert.match(thrown.error.stack, /boom at import/);
    assert.equal(hello.workflows[0].name, 'hello-world');
    assert.deepEqual(empty, { file: '.kici/workflows/empty.ts', workflows: [] });
  });

  test('SDK validation errors carry the contract texts and the call site', async () => {
    const sources = Object.fromEntries(
      INVALID.map(([name, expression]) => [
        name,
        `${SDK_IMPORT}const f = async () => {};\nexport default ${expression};\n`,
      ]),
    );
    const invalid = makeProject(sources);
    after(() => invalid.cleanup());
    const files = await describeModules(invalid, Object.keys(sources));
    for (const [[name, , message, needle, code], file] of INVALID.map((row, index) => [row, files[index]])) {
      assert.equal(file.error?.message, message, name);
      assert.equal(file.error.code, code, name);
      assert.deepEqual(file.error.location, { file: invalid.file(name), ...positionOf(sources[name], needle) }, name);
      assert.ok(file.error.suggestion?.length > 0, `${name} has a suggestion`);
    }
  });

  test('with an inline source map, locations come from the original .ts path under root', async () => {
    const mapped = makeProject({});
    after(() => mapped.cleanup());
    const tsPath = path.join(mapped.root, '.kici', 'workflows', 'mapped.ts');
    fs.writeFileSync(mapped.module('mapped'), withSourceMap(HELLO, tsPath));
    fs.writeFileSync(
      mapped.module('broken'),
      withSourceMap(THROWS, path.join(mapped.root, '.kici', 'workflows', 'broken.ts')),
    );
    const [file, broken] = await describeModules(mapped, ['mapped', 'broken']);
    assert.deepEqual(file.workflows[0].jobs[0].steps[0].sourceLocation, {
      file: '.kici/workflows/mapped.ts',
      ...positionOf(HELLO, "step('say-hello'"),
    });
    assert.deepEqual(broken.error.location, {
      file: '.kici/workflows/broken.ts',
      ...positionOf(THROWS, "new Error('boom"),
    });
    assert.match(broken.error.stack, /broken\.ts:/);
  });
});
