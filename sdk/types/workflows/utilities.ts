// Dynamic jobs, waitFor / waitForStep / WaitForTimeoutError and the utility functions.
import {
  KiciError,
  SecretNotFoundError,
  WaitForTimeoutError,
  applyIncludeExclude,
  dynamicJob,
  evaluateRules,
  expandMatrix,
  isDynamicFunction,
  isEventType,
  isStaticArray,
  isStaticObject,
  job,
  rule,
  skip,
  step,
  validateDag,
  waitFor,
  waitForStep,
  workflow,
  type RuleContext,
} from '@kici-dev/sdk';

const setup = job('setup', { runsOn: 'kici:os:linux', run: async () => ({ services: ['api', 'web'] }) });

const services = dynamicJob('services', {
  needs: setup,
  generate: async ({ $, ctx, log, env }) => {
    const listed = (await $`ls services`).stdout.split('\n').filter(Boolean);
    log.info(`${listed.length} services for ${ctx.workflow.name} on ${ctx.event.type}, home ${env.HOME}`);
    console.log(ctx.needs.setup);
    return listed.map((name) => job(`deploy-${name}`, { runsOn: 'kici:os:linux', run: async () => {} }));
  },
});

const healthy = waitForStep('api healthy', {
  check: async ({ $ }) => {
    const out = await $`curl -fsS http://localhost:8080/health`.nothrow().quiet();
    return out.ok && { size: out.stdout.length };
  },
  intervalMs: 1000,
  timeoutMs: 30_000,
  initialDelayMs: 500,
  swallowErrors: false,
  onTimeout: () => ({ size: 0 }),
});

export default workflow('utilities', {
  jobs: [
    setup,
    services,
    dynamicJob(async () => [job({ runsOn: 'kici:os:linux', run: async () => {} })]),
    dynamicJob('more', () => []),
    dynamicJob({ group: 'last', needs: [{ name: 'setup', when: 'always' }], generate: () => [] }),
    job('wait', {
      runsOn: 'kici:os:linux',
      needs: 'setup',
      steps: [
        healthy,
        step('poll', async ({ signal, log, event, dispatchInputs, rawPayload, provider, env, $, needs, secrets }) => {
          try {
            const port: number = await waitFor({
              check: () => (Math.random() > 0.5 ? 8080 : false),
              description: 'a free port',
              signal,
            });
            log.info(`port ${port}`);
          } catch (error) {
            if (error instanceof WaitForTimeoutError) log.warn(error.timeoutMs, error.lastError, error.message);
            else throw error;
          }
          const changedFiles = event.changedFiles ?? [];
          const ruleCtx: RuleContext = { event, dispatchInputs, rawPayload, provider, changedFiles, env, needs, $ };
          const gate = [rule('main', () => isEventType(event, 'push')), skip('pr', () => isEventType(event, 'pr'))];
          const verdict = await evaluateRules(gate, ruleCtx, 'gate', (name, passed) => log.debug(name, passed));
          if (!verdict.passed) log.info(`blocked by ${verdict.label}: ${verdict.problem ?? 'no problem text'}`);
          const dag = validateDag([{ name: 'a' }, { name: 'b', needs: ['a'] }]);
          if (dag.valid) log.info(dag.sortedOrder.join(' > '));
          else log.error(dag.error, dag.nodes);
          const combos = expandMatrix({ os: ['linux', 'mac'], node: ['20'] });
          const kept = applyIncludeExclude(combos, [{ os: 'win', node: '20' }], [{ os: 'mac' }]);
          const values: unknown[] = [['a'], { os: ['x'] }, () => []];
          log.info(kept, values.filter(isStaticArray), values.filter(isStaticObject), values.filter(isDynamicFunction));
          try {
            await secrets.get('MISSING');
            step('', async () => {});
          } catch (error) {
            if (error instanceof KiciError) log.error(error.location?.file, error.suggestion, error.code);
            if (error instanceof SecretNotFoundError) log.error(error.secretName, error.available);
          }
        }),
      ],
    }),
  ],
});
