// Test helpers: build a throwaway "out" tree the way the Rust host does (see sdk/PROTOCOL.md),
// spawn the runner with fd 3 as a duplex socket, send one request and collect every message;
// play a host that keeps caches; the `show` and `caught` lines fixtures share; catch an SDK
// validation error; wait for processes outside our control to disappear.
// Workflow fixtures are plain `.js` modules (no transpiling, no source maps), so locations in
// them map to the request's `.ts` file through the module path.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LineSplitter } from '../shared/lines.js';

const SDK_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['sdk', 'shared', 'engine'];

/**
 * Creates `<base>/repo` (root, work dir) and `<base>/out` with the three packages copied in and
 * each fixture written to `<out>/.kici/workflows/<name>.js`.
 * @param {Record<string, string>} workflows fixture name -> module source
 * @param {Record<string, string>} [repoFiles] repository-relative path -> content
 */
export function makeProject(workflows, repoFiles = {}) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kici-sdk-test-'));
  const root = path.join(base, 'repo');
  const out = path.join(base, 'out');
  fs.mkdirSync(path.join(root, '.kici', 'workflows'), { recursive: true });
  fs.mkdirSync(path.join(out, '.kici', 'workflows'), { recursive: true });
  fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
  for (const name of PACKAGES) {
    fs.cpSync(path.join(SDK_ROOT, name), path.join(out, 'node_modules', '@kici-dev', name), { recursive: true });
  }
  for (const [name, source] of Object.entries(workflows)) {
    fs.writeFileSync(path.join(out, '.kici', 'workflows', `${name}.js`), source);
  }
  for (const [relative, content] of Object.entries(repoFiles)) {
    fs.mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    fs.writeFileSync(path.join(root, relative), content);
  }
  return {
    root,
    out,
    runner: path.join(out, 'node_modules', '@kici-dev', 'engine', 'runner.js'),
    module: (name) => path.join(out, '.kici', 'workflows', `${name}.js`),
    file: (name) => `.kici/workflows/${name}.ts`,
    /** Imports a module of a copied package, e.g. `importPackage('engine/context.js')`. */
    importPackage: (relative) => import(pathToFileURL(path.join(out, 'node_modules', '@kici-dev', relative)).href),
    cleanup: () => fs.rmSync(base, { recursive: true, force: true }),
  };
}

/**
 * Spawns the runner, sends `request` (or each of several messages) after `ready`, and resolves
 * when it exits. A string is written as it is (a raw line). `onMessage` gets every message and
 * the channel (`send`, `hangUp` = close it, `kill` = signal the runner process).
 * @param {ReturnType<typeof makeProject>} project
 * @param {object | string | (object | string)[]} request
 * @param {(message: object, channel: {send: (message: object | string) => void, hangUp: () => void, kill: (signal: string) => void}) => void} [onMessage]
 * @returns {Promise<{messages: object[], code: number | null, stdout: string, stderr: string}>}
 */
export function runRunner(project, request, onMessage = () => {}) {
  const child = spawn(process.execPath, ['--enable-source-maps', project.runner], {
    cwd: project.root,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const ipc = child.stdio[3];
  const channel = {
    send: (message) => ipc.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`),
    hangUp: () => ipc.end(),
    kill: (signal) => child.kill(signal),
  };
  const messages = [];
  // Runner messages are never cut: a log.line of a 64 Ki-unit line is longer than that as JSON.
  const lines = new LineSplitter(
    (line) => {
      const message = JSON.parse(line);
      messages.push(message);
      if (message.type === 'ready') for (const outgoing of [request].flat()) channel.send(outgoing);
      onMessage(message, channel);
    },
    { maxLineLength: Infinity },
  );
  ipc.on('data', (chunk) => lines.push(chunk));
  ipc.on('error', () => {});
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ messages, code, stdout, stderr }));
  });
}

/**
 * A host that keeps caches, for `execute(..., onMessage)`: it records every `cache.request` and
 * answers from a store the way the agent does (restore: the exact key, else the newest entry
 * whose key starts with a restore key, in order; save: the first save of a key wins).
 * @param {{entries?: Record<string, number>, errors?: {restore?: string, save?: string}, silent?: boolean}} [table]
 *   `entries`: key -> size in bytes, oldest first; `errors`: answer every request of that op
 *   with this `error`; `silent`: never answer
 */
export function cacheHost({ entries = {}, errors = {}, silent = false } = {}) {
  const store = new Map(Object.entries(entries));
  const requests = [];
  const newest = (prefix) => [...store.keys()].reverse().find((key) => key.startsWith(prefix));
  const answer = ({ op, key, paths, restoreKeys = [] }) => {
    if (errors[op] !== undefined) return { error: errors[op] };
    if (op === 'save') {
      if (store.has(key)) return { saved: false, reason: 'exists' };
      store.set(key, 100 * paths.length);
      return { saved: true, sizeBytes: store.get(key) };
    }
    const matchedKey = store.has(key) ? key : restoreKeys.map(newest).find((found) => found !== undefined);
    return matchedKey === undefined ? { hit: false } : { hit: true, matchedKey, sizeBytes: store.get(matchedKey) };
  };
  return {
    requests,
    store,
    onMessage: (message, channel) => {
      if (message.type !== 'cache.request') return;
      requests.push(message);
      if (!silent) channel.send({ type: 'cache.response', requestId: message.requestId, ...answer(message) });
    },
  };
}

/**
 * Resolves once `condition()` holds, checking every 10 ms; rejects after `timeoutMs`. Only for
 * conditions no event announces (a process outside our control disappearing).
 */
export async function waitUntil(condition, what, timeoutMs = 3000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting until ${what}`);
    await sleep(10);
  }
}

/** True when process `pid` is gone or a zombie (orphans may never be reaped in a container). */
export function processGone(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Kills a test's leftover process, if it is still there. */
export function killLeftover(pid) {
  if (pid !== undefined && !processGone(pid)) process.kill(pid, 'SIGKILL');
}

/** The error `fn` throws, as `{message, suggestion}` (for the SDK's validation errors). */
export function thrown(fn) {
  try {
    fn();
  } catch (error) {
    return { message: error.message, suggestion: error.suggestion };
  }
  assert.fail('expected an error');
}

/** An execute request with the protocol's defaults; `fields` overrides. */
export function executeRequest(project, name, fields) {
  return {
    type: 'execute',
    module: project.module(name),
    file: project.file(name),
    root: project.root,
    jobName: fields.job,
    matrix: null,
    workDir: project.root,
    env: { KICI_RUN_ID: 'run-1' },
    event: { type: 'push', targetBranch: 'main', sha: 'abc123' },
    needs: {},
    defaultStepTimeoutMs: 10000,
    jobTimeoutMs: null,
    ...fields,
  };
}

/** Runs one job and returns the messages plus handy views of them. */
export async function execute(project, name, fields, onMessage) {
  const result = await runRunner(project, executeRequest(project, name, fields), onMessage);
  const of = (type) => result.messages.filter((message) => message.type === type);
  return {
    ...result,
    starts: of('step.start'),
    completes: of('step.complete'),
    logs: of('log.line'),
    job: of('job.complete')[0],
    /** The step.complete of the step named `stepName`. */
    step: (stepName) => of('step.complete').find((message) => message.stepName === stepName),
    /** Log lines (text only) of one step index. */
    linesOf: (stepIndex) =>
      of('log.line')
        .filter((m) => m.stepIndex === stepIndex)
        .map((m) => m.line),
  };
}

/** The SDK import line every fixture starts with. */
export const SDK_IMPORT =
  "import { workflow, job, dynamicJob, step, parallel, push, pr, tag, dispatch, rule, skip, onSuccess, onFailure, cleanup } from '@kici-dev/sdk';\n";

/**
 * Lines for a fixture, after its imports: `show(value)` logs the value's JSON on the step log,
 * `caught(promise)` resolves with what the promise resolves to or `{name, message}` of what it
 * rejects with.
 */
export const SHOW_AND_CAUGHT = `const show = (value) => console.log(JSON.stringify(value));
const caught = async (promise) => {
  try {
    return await promise;
  } catch (error) {
    return { name: error.name, message: error.message };
  }
};
`;

/**
 * A script for the checkout (`makeProject(..., { 'make-tool.sh': MAKE_TOOL })`; commands run at
 * the checkout root, so `bash ./make-tool.sh <name> <tag>` finds it): makes a new directory in
 * the checkout holding an executable `<name>` that prints `<argument> from <tag>`, and prints
 * the directory.
 */
export const MAKE_TOOL = `set -eu
dir=$(mktemp -d "$PWD/.tools-XXXXXX")
printf '#!/bin/sh\\necho "$1 from %s"\\n' "$2" > "$dir/$1"
chmod +x "$dir/$1"
echo "$dir"
`;

/** 1-based line and column of the first occurrence of `needle` in `source` (to assert call sites). */
export function positionOf(source, needle) {
  const offset = source.indexOf(needle);
  if (offset < 0) throw new Error(`fixture does not contain ${needle}`);
  const before = source.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

/** Describes every fixture of `project` in one runner and returns the `describe.result` files. */
export async function describeModules(project, names) {
  const result = await runRunner(project, {
    type: 'describe',
    root: project.root,
    files: names.map((name) => ({ module: project.module(name), file: project.file(name) })),
  });
  const answer = result.messages.find((message) => message.type === 'describe.result');
  if (answer === undefined) throw new Error(`no describe.result; stderr: ${result.stderr}`);
  return answer.files;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function vlq(value) {
  let rest = value < 0 ? (-value << 1) | 1 : value << 1;
  let encoded = '';
  do {
    let digit = rest & 31;
    rest >>>= 5;
    if (rest > 0) digit |= 32;
    encoded += BASE64[digit];
  } while (rest > 0);
  return encoded;
}

/**
 * Appends an inline source map that maps every character to the same line and column of
 * `sourcePath` (an absolute `.ts` path), the way the host's transpiler output looks to Node.
 */
export function withSourceMap(source, sourcePath) {
  // Fields are deltas: generated column (reset on each line), source index, source line and
  // source column (both relative to the previous segment, across lines).
  let previousLine = 0;
  let previousColumn = 0;
  const mappings = source.split('\n').map((text, line) => {
    const segments = [];
    for (let column = 0; column < Math.max(text.length, 1); column += 1) {
      const generated = column === 0 ? 0 : 1;
      segments.push(vlq(generated) + vlq(0) + vlq(line - previousLine) + vlq(column - previousColumn));
      previousLine = line;
      previousColumn = column;
    }
    return segments.join(',');
  });
  const map = { version: 3, sources: [sourcePath], names: [], mappings: mappings.join(';') };
  return `${source}\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}
