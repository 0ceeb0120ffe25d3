// The private temp directories of rows (mounted secret files, `$KICI_ENV` / `$KICI_PATH` files):
// made with mode 0700 under the OS temp directory and removed when their row ends or, when the
// runner exits before that (host gone, SIGTERM, an uncaught exception), at exit. A SIGKILL
// leaves them to the host.
// It does not decide what goes into them (secrets.js and env-changes.js do).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Directories made and not removed yet. */
const live = new Set();
let removesAtExit = false;

function removeLiveAtExit() {
  for (const dir of live) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // The process is exiting: there is no log left to report it to.
    }
  }
}

/** A new directory `<tmp>/<prefix>XXXXXX` of mode 0700 (mkdtemp's), removed at exit at the latest. */
export async function makePrivateDir(prefix) {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  if (!removesAtExit) {
    removesAtExit = true;
    process.once('exit', removeLiveAtExit);
  }
  live.add(dir);
  return dir;
}

/** Removes a directory made by makePrivateDir; rejects when it cannot. */
export async function removePrivateDir(dir) {
  await fs.promises.rm(dir, { recursive: true, force: true });
  live.delete(dir);
}
