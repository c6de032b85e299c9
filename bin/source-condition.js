// Module resolution hook for a source checkout (registered by bin/stem.js there): adds the
// `stem-source` export condition, under which `stem` and its subpaths resolve to the TypeScript
// sources instead of dist/. The published package never registers it.
/** Resolves with the `stem-source` condition added. */
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, 'stem-source'] });
}
