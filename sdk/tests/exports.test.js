// What `@kici-dev/sdk` exports, name by name: the authoring API of the spec (§1.1) and nothing
// else, each a function, a class or an object as it should be, the same names declared in
// index.d.ts; and the runner plumbing on `@kici-dev/sdk/internal` instead. A new or removed
// export changes a list here, so it is a visible change.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { makeProject } from './helpers.js';

/** Every export of index.js (sorted) and what it is. */
const AUTHORING = {
  KiciError: 'class',
  SecretNotFoundError: 'class',
  WaitForTimeoutError: 'class',
  afterStep: 'function',
  applyIncludeExclude: 'function',
  beforeStep: 'function',
  cleanup: 'function',
  defineDispatchInputs: 'function',
  defineEvent: 'function',
  dispatch: 'function',
  dynamicGroup: 'function',
  dynamicJob: 'function',
  evaluateRules: 'function',
  expandMatrix: 'function',
  genericWebhook: 'function',
  isDynamicFunction: 'function',
  isEventType: 'function',
  isMatrixJobOutputs: 'function',
  isStaticArray: 'function',
  isStaticObject: 'function',
  job: 'function',
  jobComplete: 'function',
  kiciEvent: 'function',
  normalizeApproval: 'function',
  onCancel: 'function',
  onFailure: 'function',
  onSuccess: 'function',
  parallel: 'function',
  pr: 'function',
  push: 'function',
  rule: 'function',
  schedule: 'function',
  skip: 'function',
  step: 'function',
  tag: 'function',
  validateDag: 'function',
  waitFor: 'function',
  waitForStep: 'function',
  workflow: 'function',
  workflowComplete: 'function',
  z: 'object',
};

/** Every export of internal.js (sorted); all functions. */
const PLUMBING = [
  'bindResults',
  'didYouMean',
  'eventNameProblem',
  'firstBlockingRule',
  'flattenSteps',
  'isEventDefinition',
  'isMatrixValue',
  'jobNames',
  'nameJobs',
  'normalizeCacheSpecs',
];

const project = makeProject({});
after(() => project.cleanup());

/** `class`, `function` or the `typeof` of anything else. */
function kind(value) {
  if (typeof value !== 'function') return typeof value;
  return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
}

/** The value names a `.d.ts` exports: `export declare function|class|const X` and `export { X }`. */
function declaredValues(file) {
  const source = fs.readFileSync(path.join(project.out, 'node_modules', '@kici-dev', 'sdk', file), 'utf8');
  const declared = [...source.matchAll(/^export declare (?:function|class|const) (\w+)/gm)].map((match) => match[1]);
  const listed = [...source.matchAll(/^export \{([^}]*)\}/gm)].flatMap((match) =>
    match[1].split(',').map((name) => name.trim()),
  );
  return [...new Set([...declared, ...listed])].filter(Boolean).sort();
}

describe('exports', () => {
  test('@kici-dev/sdk exports exactly the authoring API, each a function, class or object', async () => {
    const sdk = await project.importPackage('sdk/index.js');
    assert.deepEqual(Object.keys(sdk).sort(), Object.keys(AUTHORING));
    for (const [name, expected] of Object.entries(AUTHORING)) assert.equal(kind(sdk[name]), expected, name);
    assert.equal(typeof sdk.z.object, 'function');
    assert.ok(new sdk.KiciError('x') instanceof Error);
  });

  test('index.d.ts declares the same values', () => {
    assert.deepEqual(declaredValues('index.d.ts'), Object.keys(AUTHORING));
  });

  test('the runner plumbing is @kici-dev/sdk/internal, declared in internal.d.ts and the package exports', async () => {
    const internal = await project.importPackage('sdk/internal.js');
    assert.deepEqual(Object.keys(internal).sort(), PLUMBING);
    for (const name of PLUMBING) assert.equal(kind(internal[name]), 'function', name);
    assert.deepEqual(declaredValues('internal.d.ts'), PLUMBING);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(project.out, 'node_modules', '@kici-dev', 'sdk', 'package.json'), 'utf8'),
    );
    assert.deepEqual(manifest.exports['./internal'], { types: './internal.d.ts', default: './internal.js' });
  });
});
