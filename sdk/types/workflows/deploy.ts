// Environments, env, approval, secrets, init in every form, caches and install registries.
import { job, step, workflow, type InitOption } from '@kici-dev/sdk';

const tools: InitOption = ['auto', { run: 'command -v cowsay' }];

export default workflow('deploy', {
  registries: [
    { url: 'https://npm.acme.dev', scope: '@acme', tokenSecret: 'ci:ACME_NPM_TOKEN', alwaysAuth: false },
    { url: 'https://registry.example.com', tokenSecret: 'ci:NPM_TOKEN' },
  ],
  installEnv: 'ci:GITHUB_TOKEN',
  jobs: [
    job('generic-init', {
      runsOn: 'kici:os:linux',
      init: {
        run: 'curl -fsSL https://example.com/install.sh | sh && echo "$HOME/.tool/bin" >> "$KICI_PATH"',
        shell: 'sh',
        timeout: 120_000,
        env: { TOOL_VERSION: '1.2.3' },
        cache: { key: 'tool-1.2.3', paths: '~/.tool', restoreKeys: ['tool-'] },
      },
      cache: [
        { key: 'npm-lock', paths: ['~/.npm', 'node_modules'], restoreKeys: 'npm-' },
        { key: 'build', paths: 'out' },
      ],
      run: async (ctx) => {
        await ctx.$`tool --version`;
        const key = `notes-${process.env.KICI_RUN_ID}`;
        const found = await ctx.cache.restore({ key, paths: ['notes'], restoreKeys: ['notes-'] });
        ctx.log.info(`hit=${found.hit} matched=${found.matchedKey ?? '-'}`);
        await ctx.cache.save({ key, paths: ['notes'] });
      },
    }),
    job('mise', { runsOn: 'kici:os:linux', init: 'mise', cache: [], run: async () => {} }),
    job('mise-options', {
      runsOn: 'kici:os:linux',
      init: { mise: { install: false, cache: false } },
      run: async () => {},
    }),
    job('mise-empty', { runsOn: 'kici:os:linux', init: { mise: {} }, run: async () => {} }),
    job('auto', { runsOn: 'kici:os:linux', init: 'auto', run: async () => {} }),
    job('list', { runsOn: 'kici:os:linux', init: tools, run: async () => {} }),
    job('mixed', {
      runsOn: 'kici:os:linux',
      init: ['mise', { run: 'npm ci', cache: [{ key: 'npm', paths: '~/.npm' }] }],
      run: async () => {},
    }),
    job('none', { runsOn: 'kici:os:linux', init: false, checkout: false, run: async () => {} }),
    job('production', {
      runsOn: 'kici:os:linux',
      environment: 'production',
      approval: {
        approvers: [{ user: 'alice' }, { team: 'release' }],
        reason: 'ships to users',
        timeout: 3600,
        when: 'always',
      },
      env: { REGION: 'eu-west-1', REPLICAS: 3, DRY_RUN: false },
      steps: [
        step('use secrets', async ({ secrets, env, environment }) => {
          const token = await secrets.get('DEPLOY_TOKEN');
          if (secrets.has('SSH_KEY')) {
            const keyFile = await secrets.mountFile({ sources: ['SSH_KEY'], mode: 0o400, name: 'id_ed25519' });
            await secrets.exposeFile('KUBECONFIG', { sources: ['KUBE_A', 'KUBE_B'], divider: '\n---\n' });
            console.log(keyFile);
          }
          secrets.expose('NPM_TOKEN');
          const meta = secrets.getMeta('DEPLOY_TOKEN');
          console.log(secrets.list().join(','), meta.name, meta.scope, token.length, env.REGION, environment);
        }),
        step('hand on', async ({ setSecretOutput }) => setSecretOutput('SESSION', 'abc')),
      ],
    }),
    job('staged', {
      runsOn: ['kici:os:linux', 'deploy'],
      environments: ['staging', (event) => (event.targetBranch === 'main' ? 'production' : 'preview')],
      approval: [{ team: 'ops' }],
      env: (event) => ({ DEPLOY_TARGET: event.type === 'tag' ? 'prod' : 'staging' }),
      run: async () => {},
    }),
    job('async-env', {
      runsOn: 'kici:os:linux',
      environment: async (event) => `preview-${event.sourceBranch ?? 'none'}`,
      approval: true,
      env: async () => ({ A: '1' }),
      run: async () => {},
    }),
  ],
});
