// execute with `secrets`: ctx.secrets (get, has, list, getMeta, SecretNotFoundError), expose
// (seen by the step's `$`, ctx.env and process.env, gone in the next step), mountFile and
// exposeFile (content, modes, removal), secretsAccessed on step.complete, and masking: canary
// values printed every way a step can print them never appear in a message the runner sends.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, execute, makeProject } from './helpers.js';

const CANARY = 'canary-9f8e7d6c5b4a';
const MULTI_LINE = 'first-line-7c1d\n  second-line-8e2f\nthird-line-9a3b';
const SPECIAL = `p@ss w/rd+"q"='1'&x`;

const SECRETS = {
  DEPLOY_KEY: { value: CANARY, scope: 'production' },
  API_TOKEN: { value: 'token-0123456789' },
  MULTI: { value: MULTI_LINE },
  SPECIAL: { value: SPECIAL, scope: 'org' },
};

const FIXTURE = `${SDK_IMPORT}
import { SecretNotFoundError } from '@kici-dev/sdk';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { basename, dirname, isAbsolute } from 'node:path';
const on = 'kici:os:linux';
const show = (value) => console.log(JSON.stringify(value));
const reversed = (text) => [...text].reverse().join('');
const caught = async (fn) => {
  try {
    await fn();
    return 'no error';
  } catch (error) {
    return { name: error.name, message: error.message, secretName: error.secretName, available: error.available, isClass: error instanceof SecretNotFoundError };
  }
};
const mounted = [];
export default workflow('secrets', {
  jobs: [
    job('read', {
      runsOn: on,
      steps: [
        step('read', async ({ secrets }) => {
          const value = await secrets.get('DEPLOY_KEY');
          show({
            reversed: reversed(value),
            has: secrets.has('DEPLOY_KEY'),
            hasMissing: secrets.has('NOPE'),
            list: secrets.list(),
            meta: secrets.getMeta('DEPLOY_KEY'),
            metaWithoutScope: secrets.getMeta('API_TOKEN'),
          });
          show(await caught(() => secrets.get('NOPE')));
          show(await caught(() => secrets.getMeta('NOPE')));
        }),
        step('untouched', async ({ secrets }) => {
          secrets.has('DEPLOY_KEY');
          secrets.list();
        }),
      ],
    }),
    job('no-secrets', { runsOn: on, run: async ({ secrets }) => show(await caught(() => secrets.get('DEPLOY_KEY'))) }),
    job('expose', {
      runsOn: on,
      steps: [
        step('expose', async ({ $, secrets, env }) => {
          secrets.expose('DEPLOY_KEY');
          await $\`printf '%s\\n' "$DEPLOY_KEY" | rev\`;
          show({ env: reversed(env.DEPLOY_KEY), process: reversed(process.env.DEPLOY_KEY) });
          show(await caught(() => secrets.expose('NOPE')));
        }),
        step('next', async ({ $, env }) => {
          await $\`echo "\\\${DEPLOY_KEY:-unset}"\`;
          show({ env: env.DEPLOY_KEY ?? 'unset', process: process.env.DEPLOY_KEY ?? 'unset' });
        }),
      ],
    }),
    job('mount', {
      runsOn: on,
      steps: [
        step('mount', async ({ $, secrets }) => {
          const file = await secrets.mountFile({ sources: ['DEPLOY_KEY', 'API_TOKEN'], divider: ':', name: 'creds' });
          const other = await secrets.exposeFile('KEY_FILE', { sources: ['MULTI'], mode: 0o400 });
          mounted.push(file, other);
          await $\`test "$KEY_FILE" = \${other} && echo "KEY_FILE is set"\`;
          show({
            content: reversed(readFileSync(file, 'utf8')),
            other: reversed(readFileSync(other, 'utf8')),
            absolute: isAbsolute(file),
            name: basename(file),
            defaultName: basename(other),
            mode: statSync(file).mode & 0o777,
            otherMode: statSync(other).mode & 0o777,
            dirMode: statSync(dirname(file)).mode & 0o777,
            separateDirs: dirname(file) !== dirname(other),
          });
          show(await caught(() => secrets.mountFile({ sources: ['DEPLOY_KEY', 'NOPE'] })));
          show(await caught(() => secrets.mountFile({ sources: [] })));
        }),
        step('after-mount', async () => {
          show({ exists: mounted.map((file) => existsSync(file)), keyFile: process.env.KEY_FILE ?? 'unset' });
        }),
      ],
    }),
    job('leak', {
      runsOn: on,
      steps: [
        step('echo', async ({ $, secrets }) => {
          await $\`echo "the key is \${await secrets.get('DEPLOY_KEY')}"\`;
          await $\`echo \${await secrets.get('MULTI')}\`;
        }),
        step('console', async ({ secrets, log }) => {
          for (const name of ['DEPLOY_KEY', 'MULTI', 'SPECIAL']) {
            const value = await secrets.get(name);
            console.log(JSON.stringify({ v: value }));
            console.log(Buffer.from(value).toString('base64'));
            console.log(Buffer.from(value).toString('base64url'));
            console.log(encodeURIComponent(value));
            console.error(value);
            log.info('ctx.log says %s', value);
            // One line written in two pieces.
            process.stdout.write('written in two ' + value.slice(0, 6));
            process.stdout.write(value.slice(6) + ' pieces\\n');
          }
        }),
        step('long', async ({ secrets }) => {
          const value = await secrets.get('DEPLOY_KEY');
          // The 64 Ki cut falls inside the value: in a complete line, and in an unterminated
          // one whose value arrives in two writes.
          console.log('x'.repeat(65536 - 5) + value + 'y'.repeat(100));
          process.stdout.write('z'.repeat(65536 - 3) + value.slice(0, 10));
          process.stdout.write(value.slice(10) + 'tail'.repeat(30));
        }),
        step('expose', async ({ $, secrets }) => {
          secrets.expose('DEPLOY_KEY');
          await $\`echo "$DEPLOY_KEY"; printenv DEPLOY_KEY >&2\`;
        }),
        step('thrown', {
          continueOnError: true,
          retry: { maxAttempts: 2, delayMs: 1 },
          run: async ({ secrets }) => {
            throw new Error('failed with ' + (await secrets.get('DEPLOY_KEY')));
          },
        }),
        step('command', {
          continueOnError: true,
          run: async ({ $, secrets }) => {
            await $\`exit 3 # \${await secrets.get('SPECIAL')}\`;
          },
        }),
      ],
      cleanup: async ({ secrets }) => {
        throw new Error('cleanup saw ' + (await secrets.get('MULTI')));
      },
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());
const run = (job, fields = {}) => execute(project, 'fixture', { workflow: 'secrets', job, secrets: SECRETS, ...fields });
const reversed = (text) => [...text].reverse().join('');
const shown = (result, stepIndex) => result.linesOf(stepIndex).map((line) => JSON.parse(line));

/** Every form of every secret value the runner must never send. */
const FORBIDDEN = Object.values(SECRETS).flatMap(({ value }) => [
  value,
  Buffer.from(value).toString('base64'),
  Buffer.from(value).toString('base64url'),
  encodeURIComponent(value),
  JSON.stringify(value).slice(1, -1),
  value.replaceAll("'", "'\\''"),
  ...value.split('\n').map((line) => line.trim()),
]);

/** Every string inside a message (log lines, error texts, ...). */
function stringsOf(value) {
  if (typeof value === 'string') return [value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(stringsOf);
}

describe('secrets', { concurrency: true }, () => {
  test('get, has, list and getMeta; SecretNotFoundError lists the available names', async () => {
    const result = await run('read');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    const [report, missing, missingMeta] = shown(result, 0);
    assert.deepEqual(report, {
      reversed: reversed(CANARY),
      has: true,
      hasMissing: false,
      list: ['API_TOKEN', 'DEPLOY_KEY', 'MULTI', 'SPECIAL'],
      meta: { name: 'DEPLOY_KEY', scope: 'production' },
      metaWithoutScope: { name: 'API_TOKEN' },
    });
    const notFound = {
      name: 'SecretNotFoundError',
      message: "Secret 'NOPE' not found. Available secrets: API_TOKEN, DEPLOY_KEY, MULTI, SPECIAL",
      secretName: 'NOPE',
      available: ['API_TOKEN', 'DEPLOY_KEY', 'MULTI', 'SPECIAL'],
      isClass: true,
    };
    assert.deepEqual(missing, notFound);
    assert.deepEqual(missingMeta, notFound);
    assert.deepEqual(result.step('read').secretsAccessed, ['API_TOKEN', 'DEPLOY_KEY']);
    assert.equal('secretsAccessed' in result.step('untouched'), false);

    const none = await run('no-secrets', { secrets: undefined });
    assert.equal(shown(none, 0)[0].message, "Secret 'DEPLOY_KEY' not found. Available secrets: (none)");
    assert.equal('secretsAccessed' in none.step('step-1'), false);
  });

  test("expose: the step's $, ctx.env and process.env see the value; the next step does not", async () => {
    const result = await run('expose');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.equal(result.linesOf(0)[0], reversed(CANARY));
    const [seen, missing] = result.linesOf(0).slice(1).map((line) => JSON.parse(line));
    assert.deepEqual(seen, { env: reversed(CANARY), process: reversed(CANARY) });
    assert.equal(missing.name, 'SecretNotFoundError');
    assert.deepEqual(result.linesOf(1), ['unset', JSON.stringify({ env: 'unset', process: 'unset' })]);
    assert.deepEqual(result.step('expose').secretsAccessed, ['DEPLOY_KEY']);
    assert.equal('secretsAccessed' in result.step('next'), false);
  });

  test('rows exposing the same name at once: process.env keeps a value until the last one ends', async () => {
    const { StepSecrets } = await project.importPackage('engine/secrets.js');
    const row = (value) =>
      new StepSecrets({ secrets: { KICI_TEST_SHARED: { value } }, env: {}, rowName: `row-${value}` });
    const [first, second] = [row('first-value'), row('second-value')];
    first.api().expose('KICI_TEST_SHARED');
    second.api().expose('KICI_TEST_SHARED');
    await first.close();
    assert.equal(process.env.KICI_TEST_SHARED, 'second-value');
    assert.throws(() => first.api().expose('KICI_TEST_SHARED'), {
      message:
        "ctx.secrets.expose() called after 'row-first-value' ended; await everything the step starts before it returns",
    });
    await second.close();
    assert.equal('KICI_TEST_SHARED' in process.env, false);
  });

  test('mountFile and exposeFile: content, modes, a private directory each, removed when the step ends', async () => {
    const result = await run('mount');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.equal(result.linesOf(0)[0], 'KEY_FILE is set');
    const [files, missing, empty] = result.linesOf(0).slice(1).map((line) => JSON.parse(line));
    assert.deepEqual(files, {
      content: reversed(`${CANARY}:token-0123456789`),
      other: reversed(MULTI_LINE),
      absolute: true,
      name: 'creds',
      defaultName: 'secret',
      mode: 0o600,
      otherMode: 0o400,
      dirMode: 0o700,
      separateDirs: true,
    });
    assert.equal(missing.message, "Secret 'NOPE' not found. Available secrets: API_TOKEN, DEPLOY_KEY, MULTI, SPECIAL");
    assert.equal(
      empty.message,
      "mountFile: sources must be a non-empty array of secret names, e.g. { sources: ['DEPLOY_KEY'] }",
    );
    assert.deepEqual(shown(result, 1), [{ exists: [false, false], keyFile: 'unset' }]);
    // A failed mountFile records nothing; the successful ones record their sources.
    assert.deepEqual(result.step('mount').secretsAccessed, ['API_TOKEN', 'DEPLOY_KEY', 'MULTI']);
  });

  test('canary values printed every way a step can print them never leave the runner', async () => {
    let sent = false;
    // The runner reports an unreadable host line on its own stderr, outside any step.
    const result = await execute(project, 'fixture', { workflow: 'secrets', job: 'leak', secrets: SECRETS }, (message, channel) => {
      if (message.type !== 'step.start' || sent) return;
      sent = true;
      channel.send(`not json ${CANARY}`);
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /ignored a line from the host that is not a JSON object: not json \*\*\*\n/);
    for (const message of result.messages) {
      for (const text of stringsOf(message)) {
        for (const form of FORBIDDEN) {
          assert.ok(!text.includes(form), `${JSON.stringify(form)} in ${JSON.stringify(message).slice(0, 300)}`);
        }
      }
    }
    assert.ok(!`${result.stdout}${result.stderr}`.includes(CANARY));

    assert.deepEqual(result.linesOf(0), ['the key is ***', '***', '  ***', '***']);
    const console = result.logs.filter((m) => m.stepIndex === 1).map((m) => [m.stream, m.line]);
    assert.deepEqual(console.slice(0, 7), [
      ['stdout', '{"v":"***"}'],
      ['stdout', '***'],
      ['stdout', '***'],
      ['stdout', '***'],
      ['stderr', '***'],
      ['log', 'ctx.log says ***'],
      ['stdout', 'written in two *** pieces'],
    ]);
    assert.deepEqual(
      result.linesOf(2).map((line) => [line.length, line.slice(-8)]),
      [
        [65536, 'xxx***yy'],
        [98, 'yyyyyyyy'],
        [65536, 'zzzzz***'],
        [120, 'tailtail'],
      ],
    );
    assert.deepEqual(result.linesOf(3), ['***', '***']);
    assert.deepEqual(result.step('thrown').error, { message: 'failed with ***' });
    assert.ok(result.linesOf(4).includes('[kici] Attempt 1/2 failed: failed with ***; retrying in 1ms'));
    assert.ok(result.linesOf(4).includes('Error: failed with ***'), result.linesOf(4).join('\n'));
    assert.deepEqual(result.step('command').error, { message: "Command failed with exit code 3: exit 3 # '***'", exitCode: 3 });
    assert.equal(result.job.error, "Step 'thrown' failed; cleanup hook failed: cleanup saw ***");
  });
});
