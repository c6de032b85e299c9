import type { BaseContext, CommandClass } from 'clipanion';

/** The `stem beat …` commands. */
export const beatCommands: CommandClass<BaseContext>[] = [];
