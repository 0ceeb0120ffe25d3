// The `describe` request: import every workflow module and turn its workflows into the JSON the
// compiler writes to the lock file (WorkflowDescription, JobDescription, DynamicJobDescription,
// StepDescription, triggers, label selectors; key order and omission rules as in
// sdk/PROTOCOL.md). A module that fails to import yields an `error` entry; the other files are
// still described. `describeJob` is also how evaluate (kind `jobs`) describes generated jobs.
// It does not check names or the needs graph (the Rust compiler does) and runs no step.

import * as sdk from '@kici-dev/sdk';
import { didYouMean, flattenSteps, jobNames } from '@kici-dev/sdk/internal';
import { errorMessage } from '@kici-dev/shared';
import { importModule, locator, workflowExports } from './load.js';

/** Node's text for an import of a name the SDK does not export. */
const MISSING_SDK_EXPORT = /The requested module '@kici-dev\/sdk' does not provide an export named '([^']+)'/;

/** For a misspelt SDK import: the closest export, else where the exports are listed. */
function unknownExportHint(name) {
  const close = didYouMean(name, Object.keys(sdk));
  return close === ''
    ? `@kici-dev/sdk has no export '${name}'; see docs/sdk.md for what it exports`
    : `${close}(@kici-dev/sdk has no export '${name}')`;
}

/** Characters that make a runsOn label a glob rather than an exact label. */
const GLOB_CHARS = /[*?[\]{}]/;

/**
 * @param {{root: string, files: {module: string, file: string}[]}} request
 */
export async function describeFiles(request) {
  const files = [];
  for (const source of request.files) {
    const locate = locator({ root: request.root, module: source.module, file: source.file });
    try {
      const namespace = await importModule(source.module);
      const workflows = workflowExports(namespace).map(({ exportKey, workflow }) =>
        describeWorkflow(workflow, exportKey, locate),
      );
      files.push({ file: source.file, workflows });
    } catch (error) {
      files.push({ file: source.file, error: describeError(error, locate) });
    }
  }
  return { type: 'describe.result', files };
}

function describeError(error, locate) {
  const described = { message: errorMessage(error) };
  const location = locate.ofError(error);
  if (location) described.location = location;
  if (typeof error?.suggestion === 'string') described.suggestion = error.suggestion;
  else {
    const unknown = MISSING_SDK_EXPORT.exec(described.message)?.[1];
    if (unknown !== undefined) described.suggestion = unknownExportHint(unknown);
  }
  if (typeof error?.code === 'string') described.code = error.code;
  if (typeof error?.stack === 'string') described.stack = error.stack;
  return described;
}

/** Sets `key` only when `value` is not undefined (the lock file omits unset keys). */
function put(target, key, value) {
  if (value !== undefined) target[key] = value;
}

function putHookFlags(target, hooks) {
  put(target, 'hasOnCancel', hooks.onCancel ? true : undefined);
  put(target, 'hasCleanup', hooks.cleanup ? true : undefined);
  put(target, 'hasOnSuccess', hooks.onSuccess ? true : undefined);
  put(target, 'hasOnFailure', hooks.onFailure ? true : undefined);
  put(target, 'hasBeforeStep', hooks.beforeStep ? true : undefined);
  put(target, 'hasAfterStep', hooks.afterStep ? true : undefined);
}

const nonEmpty = (list) => (list.length > 0 ? list : undefined);
const describeRules = (rules) => nonEmpty(rules.map((rule) => ({ label: rule.label })));

export function describeWorkflow(workflow, exportKey, locate) {
  const names = jobNames(workflow);
  const described = { name: workflow.name, export: exportKey };
  put(described, 'location', locate.relativize(workflow.location));
  described.triggers = workflow.triggers.flatMap(describeTrigger);
  described.jobs = workflow.jobs.map((entry, index) =>
    entry._tag === 'DynamicJob'
      ? describeDynamicJob(entry, index, names, locate)
      : describeJob(entry, names.get(entry), names, locate),
  );
  put(described, 'rules', describeRules(workflow.rules));
  put(described, 'description', workflow.description);
  put(described, 'hashFiles', workflow.hashFiles);
  put(described, 'registries', workflow.registries);
  put(described, 'installEnv', workflow.installEnv);
  putHookFlags(described, workflow.hooks);
  if (workflow.concurrency !== undefined) {
    const { cancelInProgress, max } = workflow.concurrency;
    described.concurrency = { hasGroup: true, cancelInProgress, max };
  }
  put(described, 'timeout', workflow.timeout);
  described.options = workflow.optionKeys;
  return described;
}

function branchPattern(pattern) {
  if (!(pattern instanceof RegExp)) return { type: 'glob', pattern: String(pattern) };
  const described = { type: 'regex', pattern: pattern.source };
  if (pattern.flags !== '') described.flags = pattern.flags;
  return described;
}

/** A lock-file trigger: `_type`, then `fields` in their order, undefined ones left out. */
function triggerOf(type, fields) {
  const described = { _type: type };
  for (const [key, value] of Object.entries(fields)) put(described, key, value);
  return described;
}

function describeTrigger(trigger) {
  switch (trigger.type) {
    case 'push': {
      const described = [
        { _type: 'push', branches: trigger.branches.map(branchPattern), paths: trigger.paths.map(String) },
      ];
      if (trigger.tags !== undefined) described.push({ _type: 'tag', patterns: trigger.tags.map(branchPattern) });
      return described;
    }
    case 'pr':
      return [
        {
          _type: 'pr',
          events: trigger.events,
          targetBranches: trigger.target.map(branchPattern),
          sourceBranches: trigger.source.map(branchPattern),
          paths: trigger.paths.map(String),
        },
      ];
    case 'tag':
      return [{ _type: 'tag', patterns: trigger.patterns.map(branchPattern) }];
    case 'dispatch':
      return [triggerOf('dispatch', { types: trigger.types, inputs: trigger.inputs })];
    case 'schedule': {
      const { cronExpression, timezone, description, inputs } = trigger;
      return [triggerOf('schedule', { cronExpression, timezone, description, inputs })];
    }
    case 'kici_event': {
      const { eventName, match, not, source } = trigger;
      return [triggerOf('kici_event', { eventName, match, not, source })];
    }
    case 'workflow_complete': {
      const { workflows, statuses, source } = trigger;
      return [triggerOf('workflow_complete', { workflows, statuses, source })];
    }
    case 'job_complete': {
      const { workflows, jobs, statuses, source } = trigger;
      return [triggerOf('job_complete', { workflows, jobs, statuses, source })];
    }
    case 'generic_webhook': {
      const { source, events, match, not, auth, path } = trigger;
      return [triggerOf('generic_webhook', { source, events, match, not, auth, path })];
    }
    default:
      throw new Error(
        `unknown trigger type '${trigger.type}' (use push(), pr(), tag(), dispatch(), schedule(), kiciEvent(), ` +
          'workflowComplete(), jobComplete() or genericWebhook())',
      );
  }
}

export function labelSelector(label) {
  if (label instanceof RegExp) return { kind: 'regex', source: label.source, flags: label.flags };
  if (GLOB_CHARS.test(label)) return { kind: 'glob', pattern: label };
  return { kind: 'exact', value: label };
}

function describeNeed({ target, when }, names) {
  const name = typeof target === 'string' ? target : (names.get(target) ?? target.name);
  return when === 'on-success' ? name : { name, when };
}

function describeMatrix(matrix) {
  if (matrix === undefined) return undefined;
  if (typeof matrix === 'function') return { _type: 'dynamic' };
  return { _type: 'static', values: matrix };
}

function describeEnvironment(environment) {
  return typeof environment === 'function' ? { function: environment.toString() } : { name: environment };
}

/** A dynamicJob() entry at position `index` of the workflow's jobs. */
function describeDynamicJob(dynamicJob, index, names, locate) {
  const described = { _type: 'dynamic', index };
  put(described, 'group', dynamicJob.group);
  put(described, 'needs', nonEmpty((dynamicJob.needs ?? []).map((need) => describeNeed(need, names))));
  put(described, 'location', locate.relativize(dynamicJob.location));
  return described;
}

/**
 * A JobDescription.
 * @param {object} job a Job value
 * @param {string} name its name (`job-<N>` for an unnamed one, decided by the caller's list)
 * @param {Map<object, string>} names the names of the jobs `needs` may refer to by object
 * @param {ReturnType<typeof import('./load.js').locator>} locate
 */
export function describeJob(job, name, names, locate) {
  const described = { name };
  put(described, 'location', locate.relativize(job.location));
  described.runsOn = job.runsOn.labels.map(labelSelector);
  put(described, 'excludeLabels', nonEmpty(job.runsOn.exclude.map(labelSelector)));
  described.runsOnPick = job.runsOn.pick;
  described.needs = job.needs.map((need) => describeNeed(need, names));
  described.steps = flattenSteps(job).entries.map((entry) => describeEntry(entry, locate));
  put(described, 'matrix', describeMatrix(job.matrix));
  put(described, 'include', job.include);
  put(described, 'exclude', job.exclude);
  put(described, 'rules', describeRules(job.rules));
  put(described, 'description', job.description);
  put(described, 'checkout', job.checkout ? undefined : false);
  put(described, 'init', job.init);
  put(described, 'cache', job.cache);
  put(described, 'environments', nonEmpty(job.environments.map(describeEnvironment)));
  if (job.concurrencyGroup !== undefined) described.concurrencyGroup = describeEnvironment(job.concurrencyGroup);
  // A function's source goes to the compiler, which decides whether the orchestrator can run it.
  if (typeof job.env === 'function') described.envFunction = job.env.toString();
  else put(described, 'env', job.env);
  put(described, 'approval', job.approval);
  put(described, 'secrets', job.secrets);
  putHookFlags(described, job.hooks);
  put(described, 'gracePeriod', job.gracePeriod);
  put(described, 'maxParallel', job.maxParallel);
  put(described, 'failFast', job.failFast);
  put(described, 'timeout', job.timeout);
  described.options = job.optionKeys;
  described.stepOptions = flattenSteps(job).flat.map(({ name, step }) => {
    const options = { name, options: step.optionKeys };
    put(options, 'location', locate.relativize(step.location));
    return options;
  });
  return described;
}

function describeEntry(entry, locate) {
  if (entry.kind === 'step') return describeStep(entry.row, locate);
  const described = { kind: 'parallel', name: entry.name, failFast: entry.failFast };
  put(described, 'maxParallel', entry.maxParallel);
  described.children = entry.children.map((row) => describeStep(row, locate));
  return described;
}

function describeStep({ name, step }, locate) {
  const described = { name, hasOutputs: step.outputs !== undefined };
  put(described, 'continueOnError', step.continueOnError ? true : undefined);
  put(described, 'timeout', step.timeout);
  put(described, 'retry', step.retry);
  put(described, 'cache', step.cache);
  put(described, 'sourceLocation', locate.relativize(step.location));
  put(described, 'hasRules', step.rules.length > 0 ? true : undefined);
  put(described, 'hasOnCancel', step.onCancel ? true : undefined);
  put(described, 'hasCleanup', step.cleanup ? true : undefined);
  return described;
}
