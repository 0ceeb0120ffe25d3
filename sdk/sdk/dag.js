// `validateDag()`: checks a needs graph and orders it (Kahn's algorithm, ties in input order),
// naming the nodes at fault: a node that needs itself, needs an unknown node, or sits on a cycle.
// It does not resolve job values or `when` conditions: nodes are `{name, needs: string[]}`.

/**
 * @param {{name: string, needs?: string[]}[]} nodes
 * @returns {{valid: true, sortedOrder: string[]}
 *   | {valid: false, error: 'cycle' | 'self-reference' | 'missing-dependency', nodes: string[]}}
 */
export function validateDag(nodes) {
  const needsOf = new Map(nodes.map((node) => [node.name, node.needs ?? []]));
  const invalid = (error, names) => ({ valid: false, error, nodes: names });

  const selfReferencing = nodes.filter(({ name }) => needsOf.get(name).includes(name)).map(({ name }) => name);
  if (selfReferencing.length > 0) return invalid('self-reference', selfReferencing);
  const missing = nodes
    .filter(({ name }) => needsOf.get(name).some((need) => !needsOf.has(need)))
    .map(({ name }) => name);
  if (missing.length > 0) return invalid('missing-dependency', missing);

  const waitingOn = new Map([...needsOf].map(([name, needs]) => [name, new Set(needs).size]));
  const dependents = new Map([...needsOf.keys()].map((name) => [name, []]));
  for (const [name, needs] of needsOf) for (const need of new Set(needs)) dependents.get(need).push(name);
  const ready = [...needsOf.keys()].filter((name) => waitingOn.get(name) === 0);
  const sortedOrder = [];
  while (ready.length > 0) {
    const name = ready.shift();
    sortedOrder.push(name);
    for (const dependent of dependents.get(name)) {
      waitingOn.set(dependent, waitingOn.get(dependent) - 1);
      if (waitingOn.get(dependent) === 0) ready.push(dependent);
    }
  }
  if (sortedOrder.length === needsOf.size) return { valid: true, sortedOrder };
  return invalid('cycle', onCycles(new Set([...needsOf.keys()].filter((name) => !sortedOrder.includes(name))), dependents));
}

/** The unsorted nodes that are on a cycle: drops, until none is left, those no unsorted node needs. */
function onCycles(unsorted, dependents) {
  for (let trimmed = true; trimmed; ) {
    trimmed = false;
    for (const name of unsorted) {
      if (!dependents.get(name).some((dependent) => unsorted.has(dependent))) {
        unsorted.delete(name);
        trimmed = true;
      }
    }
  }
  return [...unsorted];
}
