import t from 'tap';
import { MemoryWorkflowStore } from '../../sdk/memory/index.js';
import { workflowStoreContract } from '../contract/index.js';

await workflowStoreContract(t, { name: 'memory', create: async () => new MemoryWorkflowStore() });
