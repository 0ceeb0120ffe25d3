// The `approval` option of a job: `true`, a list of approver clauses (`{user}` / `{team}`) or
// `{approvers, reason?, timeout?}` (timeout in seconds), normalised to the lock-file shape
// `{clauses, reason?, timeoutSeconds?, when: 'always'}`. `when: 'drift'` asks only when a check
// step reports drift; this build has no check steps, so it is refused as not implemented (E109)
// rather than silently asking every time.
// Holding a job until someone approves is the orchestrator's job, not this module's.

import { checkWholeNumber } from './common.js';

const APPROVAL_EXAMPLE =
  "e.g. approval: [{ team: 'ops' }, { user: 'alice' }] or approval: { approvers: [{ team: 'ops' }], reason: 'production deploy', timeout: 3600 }";
const OBJECT_KEYS = ['approvers', 'reason', 'timeout', 'when'];
const CLAUSE_KINDS = ['user', 'team'];

/** One approver clause as `{user}` or `{team}`, or undefined when it is not one. */
function normalizeClause(clause) {
  if (typeof clause !== 'object' || clause === null || Array.isArray(clause)) return undefined;
  const keys = Object.keys(clause);
  if (keys.length !== 1 || !CLAUSE_KINDS.includes(keys[0])) return undefined;
  const value = clause[keys[0]];
  return typeof value === 'string' && value !== '' ? { [keys[0]]: value } : undefined;
}

/**
 * @param {unknown} approval the option as written (`false` and `undefined` mean no approval)
 * @param {(message: string, suggestion: string, code?: string) => Error} fail builds the job's error
 * @returns {{clauses: ({user: string} | {team: string})[], reason?: string, timeoutSeconds?: number,
 *   when: 'always'} | undefined}
 */
export function normalizeApproval(approval, fail) {
  if (approval === undefined || approval === false) return undefined;
  if (approval === true) return { clauses: [], when: 'always' };
  const listForm = Array.isArray(approval);
  if (!listForm && (typeof approval !== 'object' || approval === null)) {
    throw fail('approval must be true, a list of approvers or {approvers, reason?, timeout?}', APPROVAL_EXAMPLE);
  }
  const spec = listForm ? { approvers: approval } : approval;
  // A misspelt key (`approver`) would otherwise drop the approvers and let anyone approve.
  const unknown = Object.keys(spec).find((key) => !OBJECT_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(`approval has no option '${unknown}' (use approvers, reason or timeout)`, APPROVAL_EXAMPLE);
  }
  const { approvers = [], reason, timeout, when = 'always' } = spec;
  if (when === 'drift') {
    throw fail(
      "approval when 'drift' needs a check step, which this build does not implement",
      'remove when: the approval is then asked for every run of the job',
      'E109',
    );
  }
  if (when !== 'always') throw fail("approval.when must be 'always'", 'remove when (it defaults to always)');
  if (!Array.isArray(approvers)) {
    throw fail('approval.approvers must be a list of {user} or {team} clauses', APPROVAL_EXAMPLE);
  }
  const clauses = approvers.map((clause, index) => {
    const normalized = normalizeClause(clause);
    if (normalized === undefined) {
      const where = listForm ? `approval[${index}]` : `approval.approvers[${index}]`;
      throw fail(`${where} must be {user: '<login>'} or {team: '<team>'}`, APPROVAL_EXAMPLE);
    }
    return normalized;
  });
  if (reason !== undefined && (typeof reason !== 'string' || reason === '')) {
    throw fail(
      'approval.reason must be a non-empty string',
      "e.g. approval: { approvers, reason: 'production deploy' }",
    );
  }
  checkWholeNumber(
    timeout,
    {
      field: 'approval.timeout',
      min: 1,
      unit: 'seconds',
      example: 'e.g. approval: { approvers, timeout: 3600 } to wait at most one hour',
    },
    fail,
  );
  const normalized = { clauses };
  if (reason !== undefined) normalized.reason = reason;
  if (timeout !== undefined) normalized.timeoutSeconds = timeout;
  normalized.when = 'always';
  return normalized;
}
