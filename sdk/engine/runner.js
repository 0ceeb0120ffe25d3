// The Node runner the Rust host starts:
//   node --enable-source-maps <out>/node_modules/@kici-dev/engine/runner.js
// with fd 3 connected to the IPC socket. It sends `ready`, takes exactly one request
// (`describe`, `evaluate` or `execute`), answers it and exits. Every way out (answer sent,
// SIGTERM, SIGINT, host gone, a crash) goes through one shutdown routine that stops the `$`
// process groups still running before the process exits. Request handling lives in
// describe.js, evaluate.js and execute.js; this file only wires IPC, output capture and
// process lifetime.

import { IpcClient, ProcessGroups, errorStack } from '@kici-dev/shared';
import { describeFiles } from './describe.js';
import { evaluateRequest } from './evaluate.js';
import { executeJob } from './execute.js';
import { HostRequests } from './host-requests.js';
import { OutputRouter } from './output.js';

/** Exit codes (sdk/PROTOCOL.md): a handled request exits 0 even when the job failed. */
const EXIT_OK = 0;
const EXIT_RUNNER_ERROR = 1;
const EXIT_HOST_CLOSED = 2;
const EXIT_SIGINT = 130;
const EXIT_SIGTERM = 143;

const IPC_FD = 3;

/**
 * At exit, how long `$` process groups get between SIGTERM and SIGKILL. Must stay below the
 * host's own grace between SIGTERM and SIGKILL of the runner (`KILL_GRACE`, 2 s, in
 * crates/kici-compiler/src/runner.rs), or the host kills the runner before it escalates and
 * members that ignore SIGTERM survive.
 */
const SHUTDOWN_GRACE_MS = 1500;

/** Longest part of an unreadable host line quoted on stderr. */
const QUOTED_LINE_CHARS = 200;

const HANDLERS = { describe: describeFiles, evaluate: evaluateRequest, execute: executeJob };

/** Resolves with the first request message (unknown types are ignored, as the protocol says). */
function nextRequest(ipc) {
  return new Promise((resolve) => {
    const stop = ipc.onMessage((message) => {
      if (!Object.hasOwn(HANDLERS, message.type)) return;
      stop();
      resolve(message);
    });
  });
}

/**
 * The one way out. The first call wins; later ones (a SIGTERM while the answer is flushed, say)
 * are ignored. It aborts `lifetime` (every step, hook and rule signal fires), stops the `$`
 * process groups (SIGTERM, up to SHUTDOWN_GRACE_MS, SIGKILL), flushes what was sent, and exits.
 */
function shutdownRoutine({ ipc, groups, lifetime }) {
  let exiting = false;
  return (code) => {
    if (exiting) return;
    exiting = true;
    lifetime.abort();
    groups
      .shutdown(SHUTDOWN_GRACE_MS)
      .then(() => ipc.close())
      .finally(() => process.exit(code));
  };
}

function report(text) {
  process.stderr.write(`[kici] ${text}\n`);
}

async function serve({ ipc, groups, lifetime }) {
  const output = new OutputRouter((message) => ipc.send(message), ipc);
  // Every message leaves through the router, which masks secret values (output.js).
  const send = (message) => output.send(message);
  output.install();
  const request = nextRequest(ipc);
  send({ type: 'ready' });
  const message = await request;
  // Subscribes a listener to the host messages of one type; returns how to unsubscribe.
  const hostMessages = (type) => (listener) =>
    ipc.onMessage((incoming) => {
      if (incoming.type === type) listener(incoming);
    });
  const channel = { send, onMessage: (listener) => ipc.onMessage(listener), lifetime: lifetime.signal };
  const caches = new HostRequests(channel, { type: 'cache.request', answerType: 'cache.response', prefix: 'cache' });
  const events = new HostRequests(channel, { type: 'event.emit', answerType: 'event.emit.response', prefix: 'emit' });
  const io = {
    send,
    output,
    onAbort: hostMessages('abort'),
    onConcurrencyAck: hostMessages('concurrency.ack'),
    lifetime: lifetime.signal,
    groups,
    caches,
    events,
  };
  send(await HANDLERS[message.type](message, io));
}

function main() {
  const ipc = new IpcClient(IPC_FD);
  const groups = new ProcessGroups();
  const lifetime = new AbortController();
  const shutdown = shutdownRoutine({ ipc, groups, lifetime });

  ipc.onHostClosed(() => shutdown(EXIT_HOST_CLOSED));
  ipc.onInvalidLine((line) => {
    const quoted = line.length > QUOTED_LINE_CHARS ? `${line.slice(0, QUOTED_LINE_CHARS)}...` : line;
    report(`ignored a line from the host that is not a JSON object: ${quoted}`);
  });
  process.on('SIGTERM', () => shutdown(EXIT_SIGTERM));
  process.on('SIGINT', () => shutdown(EXIT_SIGINT));
  process.on('uncaughtException', (error) => {
    report(`uncaught exception: ${errorStack(error)}`);
    shutdown(EXIT_RUNNER_ERROR);
  });
  process.on('unhandledRejection', (reason) => {
    report(`unhandled promise rejection: ${errorStack(reason)}`);
  });

  serve({ ipc, groups, lifetime }).then(
    () => shutdown(EXIT_OK),
    (error) => {
      report(`runner failed: ${errorStack(error)}`);
      shutdown(EXIT_RUNNER_ERROR);
    },
  );
}

main();
