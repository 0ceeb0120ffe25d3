// The `$` shell of @kici-dev/shared in-process: quoting, line delivery (over-long lines in
// pieces), exit codes, nothrow, quiet, the abort path that kills the whole process group (members
// ignoring SIGTERM included), and pausing output while the sink is congested.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ProcessGroups } from '../shared/process-groups.js';
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

  test('a member that ignores SIGTERM gets SIGKILL after the grace, even once bash has exited', { timeout: 10000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kici-shell-test-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // The stubborn member holds the FIFO's only write end: EOF on it means the member is dead.
    const reader = fs.createReadStream(fifo);
    const writerReady = once(reader, 'open');
    const memberGone = once(reader, 'end');
    reader.resume();
    const controller = new AbortController();
    const $ = createShell({
      cwd: process.cwd(),
      env: process.env,
      signal: controller.signal,
      groups: new ProcessGroups({ killGraceMs: 100 }),
      onLine: () => {},
    });
    const running = $`(trap '' TERM; exec sleep 60 >${fifo} 2>/dev/null) & wait`;
    await writerReady;
    controller.abort();
    // bash dies of the SIGTERM and the command settles while its child still lives ...
    await assert.rejects(running, (error) => error.signal === 'SIGTERM');
    // ... and the child is killed by the SIGKILL that follows.
    await memberGone;
  });

  test('an over-long line is delivered in pieces as it arrives, not when it ends', { timeout: 10000 }, async () => {
    const controller = new AbortController();
    const pieces = [];
    let firstPiece;
    const arrived = new Promise((resolve) => (firstPiece = resolve));
    const $ = createShell({
      cwd: process.cwd(),
      env: process.env,
      signal: controller.signal,
      onLine: (stream, line) => {
        pieces.push(line);
        firstPiece();
      },
    });
    const running = $`head -c 150000 /dev/zero | tr '\\0' x; sleep 30`.nothrow();
    await arrived;
    controller.abort();
    const output = await running;
    assert.deepEqual(
      pieces.map((piece) => piece.length),
      [65536, 65536, 18928],
    );
    assert.equal(output.stdout, 'x'.repeat(150000));
  });

  test('output is not read while the sink is congested, and all of it arrives once drained', async () => {
    let congested = true;
    let release;
    const drained = new Promise((resolve) => (release = resolve));
    let asked;
    const waiting = new Promise((resolve) => (asked = resolve));
    const flow = {
      get congested() {
        return congested;
      },
      drained() {
        asked();
        return drained;
      },
    };
    const lines = [];
    const $ = createShell({ cwd: process.cwd(), env: process.env, flow, onLine: (stream, line) => lines.push(line) });
    const running = $`seq 1 200000`;
    await waiting;
    const seen = lines.length;
    // Another command's round trip gives the paused stream every chance to deliver more.
    await $`true`;
    assert.equal(lines.length, seen);
    assert.ok(seen < 200000, `${seen} lines arrived while congested`);
    congested = false;
    release();
    const output = await running;
    assert.equal(lines.length, 200000);
    assert.equal(lines.at(-1), '200000');
    assert.equal(output.stdout.length, String(output).length);
  });

  test('$ must be used as a tagged template', () => {
    const { $ } = shell();
    assert.throws(() => $('ls'), /tagged template/);
  });

  test('a command Node refuses to spawn rejects with the spawn error when awaited, even with nothrow', async () => {
    const { $ } = shell();
    const refused = $`echo ${'nul\0byte'}`.nothrow();
    // Not awaited yet: the refusal must not surface as an unhandled rejection meanwhile.
    await $`true`;
    await assert.rejects(refused, { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
