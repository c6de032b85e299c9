import type { BaseContext, CommandClass } from 'clipanion';

/** The `stem schedule …` commands. */
export const scheduleCommands: CommandClass<BaseContext>[] = [];
