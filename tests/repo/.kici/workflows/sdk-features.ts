import { readFileSync, writeFileSync } from 'node:fs';
import { workflow, job, step, push, skip } from '@kici-dev/sdk';

export default workflow('sdk-features', {
  on: push({ branches: ['main', 'release/**'] }),
  jobs: [
    job('basics', {
      runsOn: 'kici:os:linux',
      env: { GREETING: 'hi there' },
      steps: [
        async ({ $ }) => {
          await $`echo "env: $GREETING, cli: $FROM_CLI"`;
        },
        step('quoting', async ({ $, log }) => {
          const phrase = "it's a \"test\" $HOME";
          const out = await $`printf '%s|' ${phrase} ${['a b', 'c']}`;
          log.info(`quoted: ${out.stdout}`);
        }),
        step('nothrow', async ({ $, log }) => {
          const result = await $`echo failing; exit 7`.nothrow();
          log.info(`exit code ${result.exitCode}`);
        }),
        step('quiet', async ({ $, log }) => {
          const result = await $`echo hidden-output`.quiet();
          log.info(`captured ${result.stdout.trim()}`.replace('hidden-output', '<captured>'));
        }),
        step('flaky', {
          retry: { maxAttempts: 3, delayMs: 10 },
          run: async ({ log }) => {
            let attempt = 1;
            try {
              attempt = Number(readFileSync('attempts.txt', 'utf8')) + 1;
            } catch {
              // first attempt: no counter yet
            }
            writeFileSync('attempts.txt', String(attempt));
            log.info(`attempt ${attempt}`);
            if (attempt < 2) throw new Error('flaky failure');
          },
        }),
        step('allowed-to-fail', {
          continueOnError: true,
          run: async ({ $ }) => {
            await $`exit 4`;
          },
        }),
        step('context', async ({ log, workflow, job }) => log.info(`${workflow.name}/${job.name}`)),
      ],
      onFailure: async ({ log, outcome }) => log.info(`onFailure after ${outcome.failedStep}`),
      cleanup: async ({ log }) => log.info('cleanup ran'),
    }),
    job('shorthand', {
      runsOn: 'kici:os:linux',
      run: async ({ log }) => log.info('run shorthand'),
      onSuccess: async ({ log }) => log.info('onSuccess ran'),
    }),
    job('not-on-main', {
      runsOn: 'kici:os:linux',
      rules: [skip('skipped on main', ({ event }) => event.targetBranch === 'main')],
      run: async ({ log }) => log.info('not on main'),
    }),
  ],
});
