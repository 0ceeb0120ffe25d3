// Triggers, rules, steps, parallel groups, retries, timeouts and every hook, as an author writes
// them.
import {
  afterStep,
  beforeStep,
  cleanup,
  dispatch,
  job,
  onCancel,
  onFailure,
  onSuccess,
  parallel,
  pr,
  push,
  rule,
  skip,
  step,
  tag,
  workflow,
} from '@kici-dev/sdk';
import fs from 'node:fs';

const onMain = rule('on main', ({ event }) => event.targetBranch === 'main');
const docsOnly = skip('docs only', ({ changedFiles }) => changedFiles.every((file) => file.startsWith('docs/')));
const hasLockfile = rule('has a lock file', async ({ $ }) => (await $`test -f package-lock.json`.nothrow()).ok);

const install = step('install', {
  cache: { key: 'npm-v1', paths: ['node_modules', '~/.npm'], restoreKeys: 'npm-' },
  run: async ({ $ }) => void (await $`npm ci`),
});

const build = step('build', {
  timeout: 10 * 60_000,
  retry: { maxAttempts: 3, delayMs: 500, backoff: 'fixed' },
  retryIf: (error, attempt) => attempt < 3 && !String(error).includes('ENOSPC'),
  rules: [hasLockfile],
  onCancel: async ({ log, outcome }) => log.warn(`${outcome.step ?? '?'} cancelled`),
  cleanup: {
    run: async ({ $, outcome }) => void (await $`rm -rf tmp-${outcome.status}`),
    timeout: 30_000,
  },
  run: async ({ $, log, env }) => {
    const out = await $`node --version`.quiet();
    log.info('node', out.stdout.trim(), 'in', env.PWD ?? '?');
    return { version: out.toString().trim(), files: fs.readdirSync('.').length };
  },
});

async function lint(ctx: import('@kici-dev/sdk').StepContext): Promise<void> {
  await ctx.$`npm run lint -- ${['--max-warnings', 0]}`;
}

export default workflow('pipeline', {
  description: 'Every step form and hook.',
  on: [
    push({ branches: ['main', 'release/*', /^hotfix-\d+$/], tags: 'v*', paths: ['src/**', '!src/**/*.md'] }),
    pr({ events: ['opened', 'synchronize'], target: 'main', source: /^feature\//, paths: 'src/**' }),
    tag({ patterns: ['v*.*.*'] }),
    dispatch({ types: 'deploy' }),
    dispatch(),
  ],
  rules: [docsOnly],
  hashFiles: ['package-lock.json'],
  concurrency: { group: ({ branch, event }) => `pipeline-${branch ?? event.type}`, cancelInProgress: false, max: 2 },
  timeout: 60 * 60_000,
  onSuccess: async ({ log, outcome }) => log.info('workflow', outcome.status),
  onFailure: onFailure(async ({ outcome }) => console.error(`failed at ${outcome.failedStep ?? '?'}`)),
  cleanup: cleanup({ run: async () => {}, timeout: 1000 }),
  onCancel: onCancel(async ({ signal }) => void signal.aborted),
  jobs: [
    job('build', {
      runsOn: 'kici:os:linux',
      rules: onMain,
      timeout: 30 * 60_000,
      gracePeriod: 10,
      checkout: true,
      steps: [
        install,
        parallel([build, lint, step(async ({ $ }) => void (await $`npm test`))], {
          failFast: false,
          maxParallel: 2,
          name: 'checks',
        }),
        step({ name: 'flaky', retry: 3, continueOnError: true, run: async ({ $ }) => void (await $`./flaky.sh`) }),
        step('report', {
          rules: skip('not on main', ({ event }) => event.targetBranch !== 'main'),
          run: async ({ setEnv, addPath }) => {
            setEnv('REPORT_DIR', 'out/report');
            addPath('node_modules/.bin');
          },
        }),
        async ({ log }) => log.debug('a bare function is a step'),
      ],
      onSuccess: onSuccess(async ({ log }) => log.info('built')),
      onFailure: async ({ outcome }) => console.log(outcome.failedStep),
      cleanup: async ({ $ }) => void (await $`rm -rf out`),
      onCancel: { run: async () => {}, timeout: 5000 },
      beforeStep: beforeStep(async ({ outcome, log }) => log.info(`before ${outcome.step}: job ${outcome.status}`)),
      afterStep: afterStep({
        run: async ({ outcome, log }) => {
          if (outcome.status === 'failed') log.error(`${outcome.step} failed: ${outcome.error}`);
        },
        timeout: 10_000,
      }),
    }),
    job({
      name: 'labels',
      runsOn: { labels: ['kici:os:linux', /^gpu-/, 'arch-*'], exclude: 'flaky-agent', pick: 'any' },
      run: async ({ job, workflow, event }) => {
        console.log(workflow.name, job.name, job.runsOn.length, event.type, event.sha);
      },
    }),
  ],
});
