import type { BaseContext, CommandClass } from 'clipanion';
import { BeatStartCommand } from './start.js';

/** The `stem beat …` commands. */
export const beatCommands: CommandClass<BaseContext>[] = [BeatStartCommand];
