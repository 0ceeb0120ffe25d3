// The Node runner the Rust host starts:
//   node --enable-source-maps <out>/node_modules/@kici-dev/engine/runner.js
// with fd 3 connected to the IPC socket. It sends `ready`, takes exactly one request
// (`describe`, `evaluate` or `execute`), answers it, kills whatever `$` processes are left,
// flushes the channel and exits. Request handling lives in describe.js, evaluate.js and
// execute.js; this file only wires IPC, output capture and process lifetime.

import { IpcClient } from '@kici-dev/shared';
import { describeFiles } from './describe.js';
import { evaluateRequest } from './evaluate.js';
import { executeJob } from './execute.js';
import { OutputRouter } from './output.js';

/** Exit codes (sdk/PROTOCOL.md): a handled request exits 0 even when the job failed. */
const EXIT_OK = 0;
const EXIT_RUNNER_ERROR = 1;
const EXIT_HOST_CLOSED = 2;
const EXIT_SIGTERM = 143;

const IPC_FD = 3;

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

async function main() {
  const ipc = new IpcClient(IPC_FD);
  const send = (message) => ipc.send(message);
  const output = new OutputRouter(send);
  output.install();
  // Aborted when the runner is about to exit: every `$` process group still running gets SIGTERM.
  const lifetime = new AbortController();
  ipc.onHostClosed(() => {
    lifetime.abort();
    process.exit(EXIT_HOST_CLOSED);
  });
  process.on('SIGTERM', () => {
    lifetime.abort();
    ipc.close().then(() => process.exit(EXIT_SIGTERM));
  });
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`[kici] unhandled promise rejection: ${reason?.stack ?? String(reason)}\n`);
  });

  const request = nextRequest(ipc);
  send({ type: 'ready' });
  const message = await request;
  const onAbort = (listener) =>
    ipc.onMessage((incoming) => {
      if (incoming.type === 'abort') listener(incoming);
    });
  const answer = await HANDLERS[message.type](message, { send, output, onAbort, lifetime: lifetime.signal });
  send(answer);
  lifetime.abort();
  await ipc.close();
  process.exit(EXIT_OK);
}

main().catch((error) => {
  process.stderr.write(`[kici] runner failed: ${error?.stack ?? String(error)}\n`);
  process.exit(EXIT_RUNNER_ERROR);
});
