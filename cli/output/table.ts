import { createRequire } from 'node:module';
import type TableType from 'cli-table3';

// Required on first use: every command module imports this file, and only a few of them print a table.
const require = createRequire(import.meta.url);

/** True when output may be coloured: a TTY, and NO_COLOR unset. */
export function colourEnabled(stream: NodeJS.WritableStream): boolean {
  return Boolean((stream as { isTTY?: boolean }).isTTY) && !('NO_COLOR' in process.env);
}

/** Renders an aligned table for people (scripts use --json instead). */
export function renderTable(stream: NodeJS.WritableStream, head: string[], rows: Array<Array<string | number>>): string {
  const colour = colourEnabled(stream);
  const Table = require('cli-table3') as typeof TableType;
  const table = new Table({
    head,
    style: { head: colour ? ['cyan'] : [], border: colour ? ['grey'] : [], compact: true },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) table.push(row.map((cell) => String(cell)));
  return table.toString();
}
