import type { BaseContext, CommandClass } from 'clipanion';
import { ScheduleApplyCommand } from './apply.js';
import { ScheduleDisableCommand } from './disable.js';
import { ScheduleDryRunCommand } from './dry-run.js';
import { ScheduleEnableCommand } from './enable.js';
import { ScheduleListCommand } from './list.js';
import { ScheduleRemoveCommand } from './remove.js';

/** The `stem schedule …` commands. */
export const scheduleCommands: CommandClass<BaseContext>[] = [
  ScheduleApplyCommand,
  ScheduleListCommand,
  ScheduleRemoveCommand,
  ScheduleEnableCommand,
  ScheduleDisableCommand,
  ScheduleDryRunCommand,
];
