// Static matrix expansion the way the orchestrator does it (crates/kici-engine/src/matrix.rs):
// a `string[]` gives `{value}` combinations, a `Record<string, string[]>` the product in
// dimension order; `exclude` is applied first, then `include`. Plus the predicates that tell a
// static matrix from a dynamic one.
// It does not enforce the 256-combination cap or refuse an empty result: the orchestrator does.

import { isObject } from './common.js';

/** Key of a one-dimension matrix's combinations (`ctx.matrix.value`). */
const SINGLE_DIMENSION_KEY = 'value';

export const isStaticArray = (value) => Array.isArray(value);
export const isStaticObject = (value) => isObject(value);
export const isDynamicFunction = (value) => typeof value === 'function';

/** Every combination of a static matrix value, first dimension outermost. */
export function expandMatrix(values) {
  if (isStaticArray(values)) return values.map((value) => ({ [SINGLE_DIMENSION_KEY]: value }));
  const dimensions = Object.entries(values);
  if (dimensions.length === 0) return [];
  return dimensions.reduce(
    (partials, [name, options]) => partials.flatMap((partial) => options.map((option) => ({ ...partial, [name]: option }))),
    [{}],
  );
}

/** True when every key of `entry` has the same value in `combination`. */
const matches = (entry, combination) => Object.entries(entry).every(([key, value]) => combination[key] === value);
const isEmpty = (entry) => Object.keys(entry).length === 0;
const sameCombination = (a, b) => Object.keys(a).length === Object.keys(b).length && matches(a, b);

/**
 * Removes the combinations an `exclude` entry matches (`{}` matches nothing), then adds each
 * `include` entry not already present (`{}` is ignored).
 */
export function applyIncludeExclude(combinations, include = [], exclude = []) {
  const kept = combinations.filter((combination) =>
    exclude.every((entry) => isEmpty(entry) || !matches(entry, combination)),
  );
  for (const entry of include) {
    if (!isEmpty(entry) && !kept.some((combination) => sameCombination(combination, entry))) kept.push(entry);
  }
  return kept;
}
