// execute, custom events over IPC: ctx.emit sends event.emit (by name or by a defineEvent()
// definition, whose schema parses the payload) and resolves on the host's answer, logging it on
// the calling row (a hook's too); a host error rejects with its text; an invalid name or payload
// rejects with a TypeError and sends nothing; an answer that never comes (abort, channel closed);
// secret values never leave in a payload.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SDK_IMPORT, SHOW_AND_CAUGHT, execute, makeProject } from './helpers.js';

const LARGE = 70000;
const FIXTURE = `${SDK_IMPORT}import { defineEvent, kiciEvent, z } from '@kici-dev/sdk';
${SHOW_AND_CAUGHT}const on = 'kici:os:linux';
const deployed = defineEvent(
  'deploy.finished',
  z.object({ environment: z.enum(['staging', 'production']), replicas: z.number().int().default(1) }),
);
export default workflow('events', {
  on: kiciEvent({ name: deployed }),
  jobs: [
    job('emits', {
      runsOn: on,
      onSuccess: async (ctx) => ctx.emit('hook:ran'),
      steps: [
        step('emit', async (ctx) => {
          show(await ctx.emit('build.done', { sha: 'abc123', files: ['a.js'] }));
          await ctx.emit('ping');
          await ctx.emit(deployed, { environment: 'production', dropped: true });
        }),
      ],
    }),
    job('invalid', {
      runsOn: on,
      run: async (ctx) => {
        show(await caught(ctx.emit('deploy finished')));
        show(await caught(ctx.emit(5)));
        show(await caught(ctx.emit('x'.repeat(129))));
        show(await caught(ctx.emit('build.done', ['a.js'])));
        show(await caught(ctx.emit('build.done', null)));
        show(await caught(ctx.emit('build.done', new Map())));
        show(await caught(ctx.emit('build.done', { count: NaN })));
        show(await caught(ctx.emit('build.done', { blob: 'x'.repeat(${LARGE}) })));
        show(await caught(ctx.emit(deployed, { environment: 'prod', replicas: 1.5 })));
        show(await caught(ctx.emit(deployed)));
      },
    }),
    job('refused', {
      runsOn: on,
      steps: [
        step('caught', async (ctx) => show(await caught(ctx.emit('build.done')))),
        step('uncaught', { continueOnError: true, run: async (ctx) => ctx.emit('build.done') }),
      ],
    }),
    job('waits', { runsOn: on, run: async (ctx) => ctx.emit('build.done') }),
    job('secret', {
      runsOn: on,
      run: async (ctx) => {
        ctx.setSecretOutput('TOKEN', 'tok-s3cr3t-42');
        await ctx.emit('minted', { url: 'https://x:tok-s3cr3t-42@host', 'tok-s3cr3t-42': ['tok-s3cr3t-42'], n: 1 });
      },
    }),
  ],
});
`;

const project = makeProject({ fixture: FIXTURE });
after(() => project.cleanup());

/**
 * A host that records every `event.emit` and answers it: with `error` when given, never when
 * `silent`; `onEmit(channel)` runs after each one is recorded.
 */
function eventHost({ error, silent = false, onEmit = () => {} } = {}) {
  const requests = [];
  return {
    requests,
    onMessage: (message, channel) => {
      if (message.type !== 'event.emit') return;
      requests.push(message);
      if (!silent) channel.send({ type: 'event.emit.response', requestId: message.requestId, error });
      onEmit(channel);
    },
  };
}

const run = async (job, table) => {
  const host = eventHost(table);
  const result = await execute(project, 'fixture', { workflow: 'events', job }, host.onMessage);
  return { host, result };
};
const EXAMPLE = "e.g. ctx.emit('deploy.finished', { environment: 'production' })";
const NAME_RULE = "must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit";
const typeError = (message) => JSON.stringify({ name: 'TypeError', message: `emit: ${message}` });
const NO_EVENTS = 'this agent cannot emit events';

describe('events', { concurrency: true }, () => {
  test('ctx.emit sends event.emit and logs the answer; a definition sends what its schema parsed', async () => {
    const { host, result } = await run('emits');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(host.requests, [
      { type: 'event.emit', requestId: 'emit-1', name: 'build.done', payload: { sha: 'abc123', files: ['a.js'] } },
      { type: 'event.emit', requestId: 'emit-2', name: 'ping', payload: {} },
      {
        type: 'event.emit',
        requestId: 'emit-3',
        name: 'deploy.finished',
        payload: { environment: 'production', replicas: 1 },
      },
      { type: 'event.emit', requestId: 'emit-4', name: 'hook:ran', payload: {} },
    ]);
    assert.deepEqual(result.linesOf(0), [
      "Emitted event 'build.done'",
      'undefined',
      "Emitted event 'ping'",
      "Emitted event 'deploy.finished'",
    ]);
    const emitted = result.logs.find((message) => message.line === "Emitted event 'ping'");
    assert.deepEqual([emitted.stream, emitted.level], ['log', 'info']);
    assert.deepEqual(result.linesOf(1), ["Emitted event 'hook:ran'"]);
  });

  test("a secret output's value is masked wherever it sits in the payload", async () => {
    const { host, result } = await run('secret');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(host.requests[0].payload, { url: 'https://x:***@host', '***': ['***'], n: 1 });
  });

  test('an invalid name or payload rejects with a TypeError and sends nothing', async () => {
    const { host, result } = await run('invalid');
    assert.equal(result.job.status, 'success', JSON.stringify(result.completes));
    assert.deepEqual(host.requests, []);
    const payloadOf = "the payload of event 'build.done'";
    assert.deepEqual(result.linesOf(0), [
      typeError(`the event name ${NAME_RULE}, got 'deploy finished'; ${EXAMPLE}`),
      typeError(`the event name ${NAME_RULE}, got 5; ${EXAMPLE}`),
      typeError(`the event name ${NAME_RULE}, got '${'x'.repeat(129)}'; ${EXAMPLE}`),
      typeError(`${payloadOf} must be a plain object, got an array; ${EXAMPLE}`),
      typeError(`${payloadOf} must be a plain object, got null; ${EXAMPLE}`),
      typeError(`${payloadOf} must be a plain object, got a Map; ${EXAMPLE}`),
      typeError(`${payloadOf} is not JSON: payload.count is NaN, which JSON cannot hold`),
      typeError(
        `${payloadOf} is ${LARGE + '{"blob":""}'.length} bytes as JSON; the limit is 65536 ` +
          '(send less, such as an id the workflows it starts can look the rest up by)',
      ),
      typeError(
        "the payload of event 'deploy.finished' does not match its schema: payload.environment: Invalid enum value. " +
          "Expected 'staging' | 'production', received 'prod'; payload.replicas: Expected integer, received float",
      ),
      typeError("the payload of event 'deploy.finished' does not match its schema: payload.environment: Required"),
    ]);
  });

  test("a host error rejects ctx.emit with the host's text and logs nothing", async () => {
    const { host, result } = await run('refused', { error: NO_EVENTS });
    assert.equal(host.requests.length, 2);
    assert.deepEqual(result.linesOf(0), [JSON.stringify({ name: 'Error', message: NO_EVENTS })]);
    assert.deepEqual(result.step('uncaught').error, { message: NO_EVENTS });
    assert.equal(result.job.error, "Step 'uncaught' failed");
  });

  test('ctx.emit waits for the answer: an abort meanwhile cancels the step', async () => {
    const { host, result } = await run('waits', {
      silent: true,
      onEmit: (channel) => channel.send({ type: 'abort', force: false }),
    });
    assert.equal(host.requests.length, 1);
    assert.equal(result.job.status, 'cancelled');
    assert.deepEqual(result.linesOf(0), []);
  });

  test('a host that closes the channel while ctx.emit waits ends the runner with exit code 2', async () => {
    const startedAt = performance.now();
    const { result } = await run('waits', { silent: true, onEmit: (channel) => channel.hangUp() });
    assert.equal(result.code, 2);
    assert.equal(result.job, undefined);
    assert.ok(performance.now() - startedAt < 5000, 'the runner did not wait for an answer');
  });
});
