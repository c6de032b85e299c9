import type { BaseContext, CommandClass } from 'clipanion';

/** The `stem routing …` commands. */
export const routingCommands: CommandClass<BaseContext>[] = [];
