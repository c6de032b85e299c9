import type { BaseContext, CommandClass } from 'clipanion';
import { WorkerStartCommand } from './start.js';
import { WorkerPingCommand } from './ping.js';
import { WorkerStatsCommand } from './stats.js';
import { WorkerInspectCommand } from './inspect.js';
import { WorkerRevokeCommand } from './revoke.js';
import { WorkerPauseCommand } from './pause.js';
import { WorkerResumeCommand } from './resume.js';
import { WorkerShutdownCommand } from './shutdown.js';
import { WorkerRateLimitCommand } from './rate-limit.js';
import { WorkerConcurrencyLimitCommand } from './concurrency-limit.js';

/** The `stem worker …` commands. */
export const workerCommands: CommandClass<BaseContext>[] = [
  WorkerStartCommand,
  WorkerPingCommand,
  WorkerStatsCommand,
  WorkerInspectCommand,
  WorkerRevokeCommand,
  WorkerPauseCommand,
  WorkerResumeCommand,
  WorkerShutdownCommand,
  WorkerRateLimitCommand,
  WorkerConcurrencyLimitCommand,
];
