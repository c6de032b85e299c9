/**
 * `stem/testing`: the adapter contract suites. A broker or store plugin proves itself by running
 * them against a real server:
 *
 * @example
 * import t from 'tap';
 * import { brokerContract } from 'stem/testing';
 * await brokerContract(t, { name: 'redis', create: async () => new RedisBroker({ url }) });
 */
export { brokerContract } from './broker-contract.js';
export { resultBackendContract } from './result-backend-contract.js';
export { taskListingContract } from './listing-contract.js';
export { revokeStoreContract } from './revoke-store-contract.js';
export { rateLimiterContract } from './rate-limiter-contract.js';
export { scheduleStoreContract } from './schedule-store-contract.js';
export { lockStoreContract } from './lock-store-contract.js';
export type { ContractFactory } from './support.js';
export { concurrencyContract } from './concurrency-contract.js';
export { boundedQueueContract } from './bounded-queue-contract.js';
export { workflowStoreContract } from './workflow-store-contract.js';
