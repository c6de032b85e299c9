import type { BaseContext, CommandClass } from 'clipanion';
import { DemoCommand } from './demo.js';

/** The commands every stem binary has, whatever the config. */
export const builtinCommands: CommandClass<BaseContext>[] = [DemoCommand];
