// Matrices (static and dynamic), every needs form and the ways to read outputs: step.result,
// ctx.outputsOf, job.result, ctx.jobOutputs and ctx.needs.
import { isMatrixJobOutputs, job, step, workflow, type NeedResult, type NeedRowResult } from '@kici-dev/sdk';

const make = step('make', async ({ $ }) => ({ version: (await $`git describe`).stdout.trim() }));
const sign = step('sign', async () => ({ signed: make.result.version !== '' }));
async function checksum() {
  return { sum: 'abc' };
}

const build = job('build', {
  runsOn: 'kici:os:linux',
  steps: [
    make,
    sign,
    checksum,
    step('read', async (ctx) => {
      const made = ctx.outputsOf(make) as { version: string };
      const bare = checksum as typeof checksum & { result: { sum: string } };
      console.log(made.version, sign.result.signed, bare.result.sum);
      console.log(ctx.outputsOf(checksum));
    }),
  ],
});

const lint = job('lint', { runsOn: 'kici:os:linux', run: async () => ({ warnings: 0 }) });

const test = job('test', {
  runsOn: 'kici:os:linux',
  matrix: { os: ['linux', 'mac'], node: ['20', '22'] },
  exclude: [{ os: 'mac', node: '20' }],
  include: [{ os: 'linux', node: '24', experimental: 'yes' }],
  run: async (ctx) => {
    const os: 'linux' | 'mac' = ctx.matrix.os;
    const node: '20' | '22' | '24' = ctx.matrix.node;
    if ('experimental' in ctx.matrix) console.log(`experimental: ${ctx.matrix.experimental}`);
    return { shard: `${os}-${ctx.matrix.node}` };
  },
});

const shards = job('shards', {
  runsOn: 'kici:os:linux',
  matrix: ['1', '2', '3'],
  // step() is not tied to a job: its ctx.matrix is typed by its own type argument.
  steps: [step<{ readonly value: string }>(async ({ matrix }) => console.log(matrix.value))],
});

const packages = job('packages', {
  runsOn: 'kici:os:linux',
  matrix: async ({ $, log, env, event, ctx }) => {
    log.info(`listing packages of ${ctx.workflow.name}/${ctx.job.name} on ${event.type} in ${env.HOME}`);
    return (await $`ls packages`).stdout.split('\n').filter(Boolean);
  },
  run: async ({ matrix }) => console.log(matrix.value),
});

const platforms = job('platforms', {
  runsOn: 'kici:os:linux',
  matrix: () => ({ os: ['linux'], arch: ['x64', 'arm64'] }),
  run: async ({ matrix }) => console.log(matrix.os, matrix.arch),
});

const isRow = (need: NeedResult | readonly NeedRowResult[]): need is readonly NeedRowResult[] => Array.isArray(need);

export default workflow('outputs', {
  jobs: [
    build,
    lint,
    test,
    shards,
    packages,
    platforms,
    job('report', {
      runsOn: 'kici:os:linux',
      needs: [build, 'lint', { name: test, when: 'always' }, { name: 'shards', when: ['success', 'failed'] }],
      run: async (ctx) => {
        const upstream = ctx.needs.build;
        if (!isRow(upstream)) {
          console.log(upstream.status, (upstream.result as { make: { version: string } }).make.version);
        }
        console.log(`jobRef: ${build.result.make.version} signed=${build.result.sign.signed}`);
        console.log(`lint: ${(ctx.jobOutputs('lint') as { warnings: number }).warnings}`, ctx.jobOutputs(lint));
        const rows = ctx.needs.test;
        if (isRow(rows)) console.log(rows.map((row) => [row.name, row.status, row.result]));
        const shards = ctx.needs.shards;
        if (isMatrixJobOutputs(shards)) console.log(shards.map((row) => row.name));
        else console.log(shards?.status);
      },
    }),
    job('after', { runsOn: 'kici:os:linux', needs: { name: 'report', when: 'on-failure' }, run: async () => {} }),
    job('single', { runsOn: 'kici:os:linux', needs: lint, run: async () => {} }),
  ],
});
