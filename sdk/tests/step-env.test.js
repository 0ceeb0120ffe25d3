// execute, env handed on between steps: fresh `$KICI_ENV` / `$KICI_PATH` files per row (private,
// empty, removed after), their parsing (first `=`, blank lines, CRLF, warnings for the lines
// ignored, KICI_* refused), applied when the row ends (not to its own later commands, also after
// a continueOnError failure); ctx.setEnv / ctx.addPath at once for the row and the later ones,
// their errors, and secrets exposed with ctx.secrets winning over both.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { MAKE_TOOL, SDK_IMPORT, execute, makeProject } from './helpers.js';

const SECRET = 'secret-value-4f3e2d';

// CRLF, a value with `=` and spaces, blank lines, and lines the runner must ignore (5, 6, 7).
const WRITE_ENV = `printf 'FROM_FILE=1\\r\\nWITH_EQUALS=a=b c\\n\\n  \\nno equals here\\n1BAD=x\\nKICI_RUN_ID=changed\\nLATER=one\\nLATER=two\\n' >> "$KICI_ENV"
echo tools >> "$KICI_PATH"
`;

const FIXTURE = `${SDK_IMPORT}
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
const on = 'kici:os:linux';
const show = (value) => console.log(JSON.stringify(value));
const mode = (file) => (statSync(file).mode & 0o777).toString(8);
const caught = (fn) => {
  try {
    fn();
    return 'no error';
  } catch (error) {
    return { name: error.name, message: error.message };
  }
};
let first;
export default workflow('env', {
  jobs: [
    job('files', {
      runsOn: on,
      steps: [
        step('write', async ({ $, env }) => {
          first = { KICI_ENV: env.KICI_ENV, KICI_PATH: env.KICI_PATH };
          show({
            sameDir: dirname(env.KICI_ENV) === dirname(env.KICI_PATH),
            modes: [mode(dirname(env.KICI_ENV)), mode(env.KICI_ENV), mode(env.KICI_PATH)],
            empty: readFileSync(env.KICI_ENV, 'utf8') + readFileSync(env.KICI_PATH, 'utf8'),
            processEnv: process.env.KICI_ENV ?? 'unset',
          });
          await $\`bash ./write-env.sh\`;
          await $\`echo "own: \\\${FROM_FILE:-unset}"\`;
          show({ own: env.FROM_FILE ?? 'unset' });
        }),
        step('read', async ({ $, env }) => {
          await $\`echo "next: $FROM_FILE|$WITH_EQUALS|$LATER|$KICI_RUN_ID"\`;
          show({
            removed: !existsSync(dirname(first.KICI_ENV)),
            fresh: env.KICI_ENV !== first.KICI_ENV && env.KICI_PATH !== first.KICI_PATH,
            pathHead: env.PATH.split(':')[0],
          });
        }),
      ],
    }),
    job('set', {
      runsOn: on,
      steps: [
        step('set', async ({ $, env, setEnv, addPath }) => {
          setEnv('GREETING', 'hello world');
          addPath(String(await $\`bash ./make-tool.sh greet set\`.quiet()).trim());
          await $\`echo "$GREETING"; greet now\`;
          show({ env: env.GREETING, process: process.env.GREETING ?? 'unset' });
          show([
            caught(() => setEnv('KICI_RUN_ID', 'x')),
            caught(() => setEnv('KICI_ENV', '/tmp/elsewhere')),
            caught(() => setEnv('1BAD', 'x')),
            caught(() => setEnv('COUNT', 1)),
            caught(() => addPath('')),
          ]);
          first = { setEnv, addPath };
        }),
        step('next', async ({ $ }) => {
          await $\`echo "$GREETING|$KICI_RUN_ID"; greet later\`;
          show([caught(() => first.setEnv('LATE', 'x')), caught(() => first.addPath('/late'))]);
        }),
      ],
      onSuccess: async ({ $ }) => { await $\`echo "hook: $GREETING"\`; },
    }),
    job('continue', {
      runsOn: on,
      steps: [
        step('fails', { continueOnError: true, run: async ({ $ }) => { await $\`echo X=1 >> "$KICI_ENV"; exit 1\`; } }),
        step('sees', async ({ $ }) => { await $\`echo "X=$X"\`; }),
      ],
    }),
    job('secret', {
      runsOn: on,
      steps: [
        step('expose', async ({ $, secrets, setEnv }) => {
          setEnv('DEPLOY_KEY', 'plain-value');
          secrets.expose('DEPLOY_KEY');
          show(caught(() => setEnv('DEPLOY_KEY', 'override')));
          await $\`test "$DEPLOY_KEY" != plain-value && echo "the exposed secret wins"\`;
        }),
        step('after', async ({ $, secrets }) => {
          await $\`echo "handed on: $DEPLOY_KEY"\`;
          secrets.expose('DEPLOY_KEY');
          await $\`test "$DEPLOY_KEY" != plain-value && echo "exposing again wins"\`;
        }),
      ],
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE }, { 'make-tool.sh': MAKE_TOOL, 'write-env.sh': WRITE_ENV });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'env', job, ...fields });
const warningsOf = (result, stepIndex) =>
  result.logs.filter((m) => m.stepIndex === stepIndex && m.level === 'warn').map((m) => m.line);
const lineOf = (result, stepIndex, position) => JSON.parse(result.linesOf(stepIndex)[position]);

describe('env handed on between steps', { concurrency: true }, () => {
  test('$KICI_ENV and $KICI_PATH: fresh private files per step, applied when the step ends', async () => {
    const result = await run('files');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(lineOf(result, 0, 0), {
      sameDir: true,
      modes: ['700', '600', '600'],
      empty: '',
      processEnv: 'unset',
    });
    // Not seen by the writing step itself after the write.
    assert.deepEqual(result.linesOf(0).slice(1, 3), ['own: unset', '{"own":"unset"}']);
    assert.deepEqual(warningsOf(result, 0), [
      "[kici] $KICI_ENV line 5 has no '=' (write NAME=value, one per line); ignored",
      "[kici] $KICI_ENV line 6: '1BAD' is not an environment variable name (letters, digits and _, not starting with a digit); ignored",
      '[kici] $KICI_ENV line 7: KICI_* variables are set by KiCI and cannot be changed; ignored',
    ]);
    assert.deepEqual(result.linesOf(1)[0], 'next: 1|a=b c|two|run-1');
    assert.deepEqual(lineOf(result, 1, 1), { removed: true, fresh: true, pathHead: path.join(project.root, 'tools') });
  });

  test('ctx.setEnv and ctx.addPath reach the step at once and the later steps and hooks', async () => {
    const result = await run('set');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(result.linesOf(0).slice(0, 3), [
      'hello world',
      'now from set',
      '{"env":"hello world","process":"unset"}',
    ]);
    assert.deepEqual(lineOf(result, 0, 3), [
      { name: 'Error', message: 'setEnv: KICI_* variables are set by KiCI and cannot be changed' },
      { name: 'Error', message: 'setEnv: KICI_* variables are set by KiCI and cannot be changed' },
      {
        name: 'TypeError',
        message:
          'setEnv: the name must be an environment variable name such as NODE_ENV (letters, digits and _, not starting with a digit)',
      },
      { name: 'TypeError', message: "setEnv: the value of 'COUNT' must be a string" },
      {
        name: 'TypeError',
        message: "addPath: the directory must be a non-empty string, e.g. ctx.addPath('/opt/tool/bin')",
      },
    ]);
    assert.deepEqual(result.linesOf(1).slice(0, 2), ['hello world|run-1', 'later from set']);
    assert.deepEqual(lineOf(result, 1, 2), [
      {
        name: 'Error',
        message: "ctx.setEnv() called after 'set' ended; await everything the step starts before it returns",
      },
      {
        name: 'Error',
        message: "ctx.addPath() called after 'set' ended; await everything the step starts before it returns",
      },
    ]);
    assert.deepEqual(result.linesOf(2), ['hook: hello world']);
  });

  test('a step that fails with continueOnError still hands its $KICI_ENV on', async () => {
    const result = await run('continue');
    assert.equal(result.step('fails').status, 'failed');
    assert.deepEqual(result.linesOf(1), ['X=1']);
  });

  test('setEnv cannot override a secret the step exposed; exposing wins over a value handed on', async () => {
    const result = await run('secret', { secrets: { DEPLOY_KEY: { value: SECRET } } });
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(lineOf(result, 0, 0), {
      name: 'Error',
      message:
        "setEnv: 'DEPLOY_KEY' holds a secret this step exposed with ctx.secrets and cannot be changed; use another name",
    });
    assert.deepEqual(result.linesOf(0)[1], 'the exposed secret wins');
    assert.deepEqual(result.linesOf(1), ['handed on: plain-value', 'exposing again wins']);
  });
});
