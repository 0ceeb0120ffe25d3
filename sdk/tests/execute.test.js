// execute, single job basics: messages and statuses of a passing and a failing job, the `$`
// shell (exit codes, nothrow, quiet, quoting, env), console attribution, over-long lines, the
// prepare log and ctx fields (matrix, job, event, needs).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const FIXTURE = `${SDK_IMPORT}
console.log('module loaded');
const on = 'kici:os:linux';
export default workflow('exec', {
  jobs: [
    job('hello', { runsOn: on, steps: [step('say-hello', async ({ $ }) => { await $\`echo "Hello, World!"\`; })] }),
    job('exit3', {
      runsOn: on,
      steps: [step('x', async ({ $ }) => { await $\`exit 3\`; }), step('after', async () => {})],
    }),
    job('nothrow', {
      runsOn: on,
      run: async ({ $ }) => {
        const out = await $\`echo out; echo err >&2; exit 4\`.nothrow();
        console.log(JSON.stringify({ exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr, ok: out.ok }));
      },
    }),
    job('quiet', {
      runsOn: on,
      run: async ({ $, log }) => {
        const out = await $\`echo hidden\`.quiet();
        log.info('captured %s', String(out).trim());
      },
    }),
    job('quoting', {
      runsOn: on,
      run: async ({ $ }) => {
        const tricky = \`it's a "quoted" $HOME \\\\ value\`;
        await $\`printf '<%s>\\n' \${tricky} \${['two words', '']} plain\`;
        const first = await $\`echo first\`.quiet();
        await $\`echo \${first}-second\`;
      },
    }),
    job('env', {
      runsOn: on,
      env: { JOB_VAR: 'from-job' },
      run: async ({ $, env }) => {
        await $\`echo "$KICI_RUN_ID $JOB_VAR"\`;
        console.log(env.KICI_RUN_ID, env.JOB_VAR);
      },
    }),
    job('console', {
      runsOn: on,
      run: async () => {
        console.log('to stdout');
        console.error('to stderr');
        process.stdout.write('partial ');
        process.stdout.write('line\\nlast without newline');
      },
    }),
    job('long-lines', {
      runsOn: on,
      run: async ({ log }) => {
        log.info('y'.repeat(70000));
        console.log('z'.repeat(70000));
      },
    }),
    job('context', {
      runsOn: [on, /gpu/],
      run: async (ctx) => {
        console.log(JSON.stringify({
          matrix: ctx.matrix, workflow: ctx.workflow, job: ctx.job, event: ctx.event.type,
          needs: ctx.needs, aborted: ctx.signal.aborted, cwd: process.cwd() === ctx.env.EXPECTED_CWD,
        }));
      },
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'exec', job, ...fields });

describe('execute', { concurrency: true }, () => {
  test('hello world: log line, step and job statuses; module output on the prepare log', async () => {
    const result = await run('hello');
    assert.equal(result.code, 0);
    assert.deepEqual(result.starts, [
      {
        type: 'step.start',
        stepIndex: 0,
        stepName: 'say-hello',
        stepType: 'step',
        state: 'running',
        concurrencyKind: 'sequential',
      },
    ]);
    assert.deepEqual(result.linesOf(0), ['Hello, World!']);
    assert.deepEqual(
      result.logs.find((m) => m.stepIndex === 0),
      {
        type: 'log.line',
        stepIndex: 0,
        stream: 'stdout',
        line: 'Hello, World!',
      },
    );
    assert.equal(result.step('say-hello').status, 'success');
    assert.equal(result.step('say-hello').attempts, 1);
    assert.equal(result.job.status, 'success');
    assert.equal(result.job.error, undefined);
    assert.deepEqual(result.job.stepResults, [{ stepIndex: 0, stepName: 'say-hello', status: 'success' }]);
    assert.equal(result.messages[0].type, 'ready');
    assert.equal(result.messages.at(-1).type, 'job.complete');
    assert.deepEqual(
      result.logs.find((m) => m.stepIndex === -1),
      {
        type: 'log.line',
        stepIndex: -1,
        stream: 'stdout',
        line: 'module loaded',
      },
    );
  });

  test('a $ command exiting 3 fails the step with exitCode 3 and skips the rest', async () => {
    const result = await run('exit3');
    assert.equal(result.code, 0);
    const failed = result.step('x');
    assert.equal(failed.status, 'failed');
    assert.deepEqual(failed.error, { message: 'Command failed with exit code 3: exit 3', exitCode: 3 });
    assert.equal(result.step('after').status, 'skipped');
    assert.equal(
      result.starts.some((m) => m.stepName === 'after'),
      false,
    );
    assert.equal(result.job.status, 'failed');
    assert.equal(result.job.error, "Step 'x' failed");
  });

  test('.nothrow() resolves with the output of a failing command', async () => {
    const result = await run('nothrow');
    assert.equal(result.job.status, 'success');
    const report = result.linesOf(0).find((line) => line.startsWith('{'));
    assert.deepEqual(JSON.parse(report), { exitCode: 4, stdout: 'out\n', stderr: 'err\n', ok: false });
    assert.deepEqual(
      result.logs
        .filter((m) => m.stepIndex === 0 && m.line !== report)
        .map((m) => [m.stream, m.line])
        .sort(),
      [
        ['stderr', 'err'],
        ['stdout', 'out'],
      ],
    );
  });

  test('.quiet() keeps output out of the log but captures it', async () => {
    const result = await run('quiet');
    assert.deepEqual(
      result.logs.filter((m) => m.stepIndex === 0),
      [{ type: 'log.line', stepIndex: 0, stream: 'log', line: 'captured hidden', level: 'info' }],
    );
  });

  test('interpolated values are shell-quoted; outputs interpolate as their trimmed stdout', async () => {
    const result = await run('quoting');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(0), [
      '<it\'s a "quoted" $HOME \\ value>',
      '<two words>',
      '<>',
      '<plain>',
      'first-second',
    ]);
  });

  test('$ and ctx.env see the host env layer merged with the job env', async () => {
    const result = await run('env');
    assert.deepEqual(result.linesOf(0), ['run-1 from-job', 'run-1 from-job']);
  });

  test('console and process.stdout/stderr writes inside a step are attributed to it', async () => {
    const result = await run('console');
    assert.deepEqual(
      result.logs.filter((m) => m.stepIndex === 0).map((m) => [m.stream, m.line]),
      [
        ['stdout', 'to stdout'],
        ['stderr', 'to stderr'],
        ['stdout', 'partial line'],
        ['stdout', 'last without newline'],
      ],
    );
    assert.equal(result.stdout, '');
  });

  test('a line longer than 65536 code units is sent as several log.line messages', async () => {
    const result = await run('long-lines');
    assert.deepEqual(
      result.logs.filter((m) => m.stepIndex === 0).map((m) => [m.stream, m.line[0], m.line.length]),
      [
        ['log', 'y', 65536],
        ['log', 'y', 4464],
        ['stdout', 'z', 65536],
        ['stdout', 'z', 4464],
      ],
    );
  });

  test('ctx carries matrix, workflow, job, event and needs; steps run in workDir', async () => {
    const result = await run('context', {
      jobName: 'context (linux)',
      matrix: { os: 'linux' },
      needs: { build: { status: 'success' } },
      env: { EXPECTED_CWD: project.root },
    });
    assert.deepEqual(JSON.parse(result.linesOf(0)[0]), {
      matrix: { os: 'linux' },
      workflow: { name: 'exec' },
      job: {
        name: 'context (linux)',
        runsOn: [
          { kind: 'exact', value: 'kici:os:linux' },
          { kind: 'regex', source: 'gpu', flags: '' },
        ],
      },
      event: 'push',
      needs: { build: { status: 'success' } },
      aborted: false,
      cwd: true,
    });
  });

  test('an unknown workflow or job fails the job with the contract text', async () => {
    const missingWorkflow = await run('hello', { workflow: 'nope' });
    assert.equal(missingWorkflow.job.status, 'failed');
    assert.equal(missingWorkflow.job.error, "Workflow 'nope' not found in module exports");
    const missingJob = await run('nope');
    assert.equal(missingJob.job.error, "Job 'nope' not found in workflow 'exec'");
  });
});
