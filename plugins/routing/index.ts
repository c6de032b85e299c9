import type { StemPlugin } from '../../sdk/plugin.js';

/** Placeholder until the routing plugin lands: routes nothing. */
export function routing(options: { file: string }): StemPlugin {
  return { name: 'routing', apply() {}, ...{ file: options.file } };
}
