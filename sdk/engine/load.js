// Loading transpiled workflow modules: importing one, listing its workflow exports in the
// protocol's order (`#default`, `#default[<i>]`, then `#<name>`), finding a workflow by name and
// in it a static job by name or a dynamicJob() entry by index, and turning absolute locations
// (SDK call sites, stack frames) into repository-relative ones. It does not describe or run
// anything.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { jobNames } from '@kici-dev/sdk/internal';
import { parseStackFrames } from '@kici-dev/shared';

const isWorkflow = (value) => value?._tag === 'Workflow';

/** Imports a transpiled module by absolute path. */
export function importModule(modulePath) {
  return import(pathToFileURL(modulePath).href);
}

/**
 * Workflows exported by a module namespace, each once (first export wins).
 * @returns {{exportKey: string, workflow: object}[]}
 */
export function workflowExports(namespace) {
  const found = [];
  const seen = new Set();
  const add = (exportKey, value) => {
    if (!isWorkflow(value) || seen.has(value)) return;
    seen.add(value);
    found.push({ exportKey, workflow: value });
  };
  const main = namespace.default;
  if (Array.isArray(main)) main.forEach((value, index) => add(`#default[${index}]`, value));
  else add('#default', main);
  for (const key of Object.keys(namespace)) {
    if (key !== 'default') add(`#${key}`, namespace[key]);
  }
  return found;
}

/** Imports `request.module` and finds the workflow named `request.workflow`. */
async function loadWorkflow(request) {
  const namespace = await importModule(request.module);
  const entry = workflowExports(namespace).find(({ workflow }) => workflow.name === request.workflow);
  if (entry === undefined) throw new Error(`Workflow '${request.workflow}' not found in module exports`);
  return entry.workflow;
}

/**
 * Imports `request.module` and finds `request.workflow` and its static job `request.job`.
 * @returns {Promise<{workflow: object, job: object}>}
 */
export async function loadJob(request) {
  const workflow = await loadWorkflow(request);
  for (const [job, name] of jobNames(workflow)) {
    if (name === request.job) return { workflow, job };
  }
  throw new Error(`Job '${request.job}' not found in workflow '${request.workflow}'`);
}

/**
 * Imports `request.module` and finds `request.workflow` and the dynamicJob() entry at `index`
 * of its jobs.
 * @returns {Promise<{workflow: object, dynamicJob: object}>}
 */
export async function loadDynamicJob(request, index) {
  const workflow = await loadWorkflow(request);
  const dynamicJob = Number.isSafeInteger(index) ? workflow.jobs[index] : undefined;
  if (dynamicJob?._tag !== 'DynamicJob') {
    throw new Error(`Workflow '${request.workflow}' has no dynamic job at index ${index}`);
  }
  return { workflow, dynamicJob };
}

/**
 * Makes locations repository-relative for one module: the module's own transpiled path (seen
 * when it has no source map) maps to its repository file, paths under `root` become relative
 * with `/` separators, anything else stays absolute.
 * @param {{root: string, module: string, file: string}} source
 */
export function locator({ root, module, file }) {
  const relativeFile = (absolute) => {
    if (absolute === module) return file;
    const relative = path.relative(root, absolute);
    if (relative.startsWith('..') || path.isAbsolute(relative)) return absolute;
    return relative.split(path.sep).join('/');
  };
  const inRepository = (absolute) =>
    absolute === module ||
    (!path.relative(root, absolute).startsWith('..') && !absolute.includes(`${path.sep}node_modules${path.sep}`));

  return {
    /** @param {{file: string, line: number, column: number} | undefined} location */
    relativize(location) {
      if (location === undefined) return undefined;
      return { file: relativeFile(location.file), line: location.line, column: location.column };
    },
    /** The location an error carries (KiciError), else its first stack frame inside the repository. */
    ofError(error) {
      if (error?.location) return this.relativize(error.location);
      return this.relativize(parseStackFrames(error?.stack).find((frame) => inRepository(frame.file)));
    },
  };
}
