// The `$` shell of @kici-dev/shared in-process: quoting, line delivery, exit codes, nothrow,
// quiet, and the abort path that kills the whole process group.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProcessOutput, buildCommand, createShell, quote } from '../shared/shell.js';

function shell(signal) {
  const lines = [];
  const $ = createShell({
    cwd: process.cwd(),
    env: process.env,
    signal,
    onLine: (stream, line) => lines.push([stream, line]),
  });
  return { $, lines };
}

describe('shell', { concurrency: true }, () => {
  test('quote: safe words stay bare, everything else is single-quoted', () => {
    const cases = [
      ['plain-word_1.2/x:y=z@v%+,', 'plain-word_1.2/x:y=z@v%+,'],
      ['two words', "'two words'"],
      ["it's", "'it'\\''s'"],
      ['$HOME', "'$HOME'"],
      ['', "''"],
      [42, '42'],
    ];
    for (const [value, expected] of cases) assert.equal(quote(value), expected, String(value));
  });

  test('buildCommand: arrays become words, outputs their stdout without the newline', () => {
    const output = new ProcessOutput({ command: 'x', stdout: 'a b\n', stderr: '', exitCode: 0, signal: null });
    assert.equal(buildCommand(['ls ', ' ', ''], [['-l', 'my dir'], output]), "ls -l 'my dir' 'a b'");
  });

  test('lines arrive per stream; the output is captured whole', async () => {
    const { $, lines } = shell();
    const output = await $`printf 'one\ntwo'; echo err >&2`;
    assert.deepEqual(lines.sort(), [
      ['stderr', 'err'],
      ['stdout', 'one'],
      ['stdout', 'two'],
    ]);
    assert.equal(output.stdout, 'one\ntwo');
    assert.equal(String(output), 'one\ntwo');
    assert.equal(output.exitCode, 0);
  });

  test('a non-zero exit rejects with the ProcessOutput; nothrow resolves; quiet logs nothing', async () => {
    const { $, lines } = shell();
    await assert.rejects($`exit 3`, (error) => {
      assert.ok(error instanceof ProcessOutput && error instanceof Error);
      assert.equal(error.message, 'Command failed with exit code 3: exit 3');
      assert.equal(error.exitCode, 3);
      return true;
    });
    assert.equal((await $`exit 5`.nothrow()).exitCode, 5);
    assert.equal((await $`echo quiet`.quiet()).stdout, 'quiet\n');
    assert.deepEqual(lines, []);
  });

  test('pipefail and errexit are on', async () => {
    const { $ } = shell();
    assert.equal((await $`false | true`.nothrow()).exitCode, 1);
    assert.equal((await $`false; echo unreachable`.nothrow()).stdout, '');
  });

  test('an abort kills the whole process group', async () => {
    const controller = new AbortController();
    let started;
    const seen = new Promise((resolve) => (started = resolve));
    const $ = createShell({ cwd: process.cwd(), env: process.env, signal: controller.signal, onLine: started });
    // The background sleep keeps stdout open: the command only settles once the whole group is gone.
    const running = $`sleep 30 & echo started; sleep 31; wait`;
    await seen;
    controller.abort();
    await assert.rejects(running, (error) => {
      assert.equal(error.signal, 'SIGTERM');
      assert.equal(error.exitCode, null);
      assert.match(error.message, /^Command failed with signal SIGTERM: sleep 30/);
      return true;
    });
  });

  test('$ must be used as a tagged template', () => {
    const { $ } = shell();
    assert.throws(() => $('ls'), /tagged template/);
  });
});
