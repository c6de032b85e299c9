// The no-op task of bench/isolation.ts: its children import this module by path.
import { defineTask } from 'stem';

/** Does nothing: what is measured is the cost of getting to the handler and back. */
export const noop = defineTask({ name: 'bench.noop', options: { handlerModule: import.meta.url }, handler: () => 1 });
