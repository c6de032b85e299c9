import t from 'tap';
import { MemoryBroker } from '../../sdk/memory/index.js';
import { boundedQueueContract } from './index.js';

await boundedQueueContract(t, { name: 'memory', create: async () => new MemoryBroker() });
