import type { BaseContext, CommandClass } from 'clipanion';
import { RoutingDumpCommand } from './dump.js';
import { RoutingTestCommand } from './test.js';

/** The `stem routing …` commands. */
export const routingCommands: CommandClass<BaseContext>[] = [RoutingDumpCommand, RoutingTestCommand];
