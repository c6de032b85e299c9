import type { BaseContext, CommandClass } from 'clipanion';
import { beatCommands } from './beat/index.js';
import { ConfigPrintCommand } from './config/print.js';
import { DashboardCommand } from './dashboard.js';
import { DemoCommand } from './demo.js';
import { DlqListCommand } from './dlq/list.js';
import { DlqPurgeCommand } from './dlq/purge.js';
import { DlqReplayCommand } from './dlq/replay.js';
import { DlqShowCommand } from './dlq/show.js';
import { EnqueueCommand } from './enqueue.js';
import { EventsCommand } from './events.js';
import { HealthCommand } from './health.js';
import { QueuesListCommand } from './queues/list.js';
import { QueuesPurgeCommand } from './queues/purge.js';
import { ResultGetCommand } from './result/get.js';
import { ResultListCommand } from './result/list.js';
import { ResultRetryCommand } from './result/retry.js';
import { ResultWaitCommand } from './result/wait.js';
import { routingCommands } from './routing/index.js';
import { scheduleCommands } from './schedule/index.js';
import { TasksListCommand } from './tasks/list.js';
import { wfCommands } from './wf/index.js';
import { workerCommands } from './worker/index.js';

/** The commands every stem binary has, whatever the config. */
export const builtinCommands: CommandClass<BaseContext>[] = [
  DemoCommand,
  ...workerCommands,
  EventsCommand,
  DashboardCommand,
  EnqueueCommand,
  ResultGetCommand,
  ResultWaitCommand,
  ResultListCommand,
  ResultRetryCommand,
  DlqListCommand,
  DlqShowCommand,
  DlqReplayCommand,
  DlqPurgeCommand,
  QueuesListCommand,
  QueuesPurgeCommand,
  HealthCommand,
  TasksListCommand,
  ConfigPrintCommand,
  ...routingCommands,
  ...scheduleCommands,
  ...beatCommands,
  ...wfCommands,
];
