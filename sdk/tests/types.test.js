// The SDK's types against the TypeScript compiler (`KICI_TEST_TSC`, the path `scripts/tsc.sh`
// prints): the workflows in sdk/types, written as authors write them, type-check in strict mode,
// each wrong usage in sdk/types/invalid is still an error, and a type error in a workflow fails
// the check naming its file and code.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const TSC = process.env.KICI_TEST_TSC ?? '';
if (TSC === '' && process.env.KICI_TEST_REQUIRE_TSC) {
  throw new Error('KICI_TEST_REQUIRE_TSC is set but KICI_TEST_TSC is not');
}
const TSC_SKIP =
  TSC !== '' && fs.existsSync(TSC) ? false : 'no TypeScript: set KICI_TEST_TSC to the path ./scripts/tsc.sh prints';
const TYPES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'types');

/** Runs tsc on the project `dir`, with the @types/node installed next to it. */
function tsc(dir) {
  const typeRoots = path.resolve(path.dirname(TSC), '..', '@types');
  return spawnSync(TSC, ['-p', dir, '--typeRoots', typeRoots, '--pretty', 'false'], { encoding: 'utf8' });
}

test('sdk/types type-checks in strict mode', { skip: TSC_SKIP }, () => {
  const { status, stdout, stderr } = tsc(TYPES);
  assert.equal(stdout + stderr, '');
  assert.equal(status, 0);
});

test('a type error in a workflow fails the check with its file and code', { skip: TSC_SKIP }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kici-types-'));
  try {
    // The same compiler options and SDK paths (resolved from the extended config), one workflow.
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: path.join(TYPES, 'tsconfig.json'), include: ['workflows/*.ts'] }),
    );
    fs.mkdirSync(path.join(dir, 'workflows'));
    const source = fs.readFileSync(path.join(TYPES, 'workflows', 'pipeline.ts'), 'utf8');
    const broken = source.replace('timeout: 60 * 60_000,', "timeout: '1h',");
    assert.notEqual(broken, source);
    fs.writeFileSync(path.join(dir, 'workflows', 'pipeline.ts'), broken);
    const { status, stdout } = tsc(dir);
    assert.equal(status, 2);
    assert.match(
      stdout,
      /workflows\/pipeline\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
