import type { BaseContext, CommandClass } from 'clipanion';
import { WfCancelCommand } from './cancel.js';
import { WfEmitCommand } from './emit.js';
import { WfListCommand } from './list.js';
import { WfRewindCommand } from './rewind.js';
import { WfShowCommand } from './show.js';
import { WfStartCommand } from './start.js';

/** `stem wf start|list|show|cancel|emit|rewind`. */
export const wfCommands: CommandClass<BaseContext>[] = [
  WfStartCommand,
  WfListCommand,
  WfShowCommand,
  WfCancelCommand,
  WfEmitCommand,
  WfRewindCommand,
];
