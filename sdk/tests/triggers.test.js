// Trigger factories: the lock-file triggers describe writes for them (exact JSON) and every
// refusal (message, suggestion and the call site of the factory).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, describeModules, makeProject, positionOf, thrown } from './helpers.js';

const project = makeProject({});
after(() => project.cleanup());
const { push, pr, tag, dispatch } = await project.importPackage('sdk/index.js');

/** [what is called, message, suggestion] for each refusal. */
const REFUSED = [
  [
    () => push({ branch: 'main' }),
    "push() has no option 'branch' (use branches, tags or paths)",
    "did you mean 'branches'? e.g. push({ branches: 'main', paths: ['src/**', '!docs/**'] })",
  ],
  [
    () => push('main'),
    "push() options must be an object, got 'main'",
    "e.g. push({ branches: 'main', paths: ['src/**', '!docs/**'] })",
  ],
  [
    () => pr({ targets: 'main' }),
    "pr() has no option 'targets' (use events, target, source or paths)",
    "did you mean 'target'? e.g. pr({ events: ['opened', 'synchronize'], target: 'main' })",
  ],
  [
    () => tag({ pattern: 'v*' }),
    "tag() has no option 'pattern' (use patterns)",
    "did you mean 'patterns'? e.g. tag({ patterns: 'v*' })",
  ],
  [() => tag({ on: 'v*' }), "tag() has no option 'on' (use patterns)", "e.g. tag({ patterns: 'v*' })"],
  [
    () => dispatch({ type: 'deploy' }),
    "dispatch() has no option 'type' (use types)",
    "did you mean 'types'? e.g. dispatch({ types: 'deploy' })",
  ],
  [
    () => dispatch({ types: ['deploy', ''] }),
    "dispatch() types must be a non-empty string or a list of them, got ''",
    "e.g. dispatch({ types: 'deploy' })",
  ],
  [
    () => dispatch({ types: 5 }),
    'dispatch() types must be a non-empty string or a list of them, got 5',
    "e.g. dispatch({ types: 'deploy' })",
  ],
];

describe('triggers', () => {
  test('each refusal has its message and suggestion', () => {
    for (const [call, message, suggestion] of REFUSED) {
      assert.deepEqual(thrown(call), { message, suggestion });
    }
  });

  test('a refused trigger is a describe error at the factory call', async () => {
    const source = `${SDK_IMPORT}export default workflow('w', {
  on: [push(), pr({ branches: 'main' })],
  jobs: [job('a', { runsOn: 'x', run: async () => {} })],
});
`;
    const invalid = makeProject({ misspelt: source });
    after(() => invalid.cleanup());
    const [file] = await describeModules(invalid, ['misspelt']);
    assert.equal(file.error.message, "pr() has no option 'branches' (use events, target, source or paths)");
    assert.equal(file.error.suggestion, "e.g. pr({ events: ['opened', 'synchronize'], target: 'main' })");
    assert.deepEqual(file.error.location, { file: invalid.file('misspelt'), ...positionOf(source, 'pr({') });
  });
});
