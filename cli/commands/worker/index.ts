import type { BaseContext, CommandClass } from 'clipanion';
import { WorkerStartCommand } from './start.js';

/** The `stem worker …` commands. */
export const workerCommands: CommandClass<BaseContext>[] = [WorkerStartCommand];
