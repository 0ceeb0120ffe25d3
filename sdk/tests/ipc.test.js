// Framing and flow control of @kici-dev/shared. Line splitting in-process: over-long lines are
// cut into pieces (never inside a surrogate pair), an over-long unterminated line is not held
// back, `Infinity` keeps lines whole (IPC framing). The IPC client on a real fd 3, in a child
// process as the runner has it: when the host stops reading, `congested` turns true once about
// 1 MiB is unsent, `drained()` resolves when the host caught up, and nothing is lost or reordered.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LineSplitter, MAX_LINE_LENGTH, splitLongLine } from '../shared/lines.js';

const IPC_MODULE = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../shared/ipc.js')).href;

/** Sends 10 kB messages until congested, reports how many, waits for drained(), reports again. */
const SENDER = `
import { IpcClient } from ${JSON.stringify(IPC_MODULE)};
const ipc = new IpcClient(3);
const text = 'x'.repeat(10000);
let sent = 0;
while (!ipc.congested && sent < 100000) ipc.send({ type: 'log.line', n: sent++, line: text });
process.stdout.write('congested ' + sent + '\\n');
await ipc.drained();
process.stdout.write('drained ' + ipc.congested + '\\n');
await ipc.close();
`;

describe('ipc', () => {
  test('congested while the host does not read; drained once it caught up; nothing lost', { timeout: 10000 }, async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SENDER], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    const host = child.stdio[3];
    host.pause();
    const reports = [];
    const stdout = new LineSplitter((line) => reports.push(line));
    let congested;
    const reported = new Promise((resolve) => (congested = resolve));
    child.stdout.on('data', (chunk) => {
      stdout.push(chunk);
      if (reports.length === 1) congested();
    });
    await reported;
    const sent = Number(reports[0].split(' ')[1]);
    // Over 1 MiB unsent (plus what the kernel holds) before congestion; far fewer than the cap.
    assert.ok(sent > 100 && sent < 100000, reports[0]);

    const received = [];
    const messages = new LineSplitter((line) => received.push(JSON.parse(line).n), { maxLineLength: Infinity });
    host.on('data', (chunk) => messages.push(chunk));
    host.resume();
    const [code] = await once(child, 'close');
    assert.equal(code, 0);
    assert.deepEqual(reports, [`congested ${sent}`, 'drained false']);
    assert.deepEqual(
      received,
      Array.from({ length: sent }, (_, n) => n),
    );
  });
});

describe('lines', () => {
  test('splitLongLine cuts at the limit, never inside a surrogate pair', () => {
    const cases = [
      ['abc', 3, ['abc']],
      ['abcdefg', 3, ['abc', 'def', 'g']],
      ['ab😀cd', 3, ['ab', '😀c', 'd']],
      ['', 3, ['']],
    ];
    for (const [line, max, pieces] of cases) assert.deepEqual(splitLongLine(line, max), pieces, line);
    assert.equal(MAX_LINE_LENGTH, 65536);
    assert.deepEqual(
      splitLongLine('x'.repeat(MAX_LINE_LENGTH + 1)).map((piece) => piece.length),
      [MAX_LINE_LENGTH, 1],
    );
  });

  test('full pieces of an unterminated line go out as they arrive; the rest waits for its end', () => {
    const lines = [];
    const splitter = new LineSplitter((line) => lines.push(line), { maxLineLength: 4 });
    splitter.push('abcdefghij');
    assert.deepEqual(lines, ['abcd', 'efgh']);
    splitter.push('k\nlmnopqrst\nu');
    assert.deepEqual(lines, ['abcd', 'efgh', 'ijk', 'lmno', 'pqrs', 't']);
    splitter.end();
    assert.deepEqual(lines.at(-1), 'u');
  });

  test('maxLineLength Infinity keeps every line whole', () => {
    const lines = [];
    const splitter = new LineSplitter((line) => lines.push(line), { maxLineLength: Infinity });
    splitter.push(Buffer.from(`${'y'.repeat(200000)}\n`));
    assert.deepEqual(
      lines.map((line) => line.length),
      [200000],
    );
  });
});
