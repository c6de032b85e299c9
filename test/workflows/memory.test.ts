import t from 'tap';
import { MemoryBroker, MemoryResultBackend, MemoryWorkflowStore, type StemPlugin } from '../../sdk/index.js';
import { orderScenarios } from './order-scenarios.js';

// One broker, backend and store for the whole file, so that two Stems (a deploy) share them.
const broker = new MemoryBroker();
const backend = new MemoryResultBackend();
const store = new MemoryWorkflowStore();
const shared = (): StemPlugin => ({
  name: 'shared-memory',
  apply(stem) {
    stem.provide('broker', broker);
    stem.provide('backend', backend);
    stem.provide('workflowStore', store);
  },
});

await orderScenarios(t, { plugins: () => [shared()] });
