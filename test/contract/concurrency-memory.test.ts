import t from 'tap';
import { MemoryBroker } from '../../sdk/memory/index.js';
import { concurrencyContract } from './index.js';

await concurrencyContract(t, { name: 'memory', create: async () => new MemoryBroker() });
