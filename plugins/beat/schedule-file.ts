import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { validateScheduleDefinitions, type ScheduleDefinition } from './schedule-rules.js';
import { UsageError } from '../../sdk/errors.js';

/** The 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  return { line, column: before.length - before.lastIndexOf('\n') };
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    const where = position ? (({ line, column }) => `line ${line}, column ${column}: `)(lineAndColumn(text, Number(position[1]))) : '';
    throw new UsageError(
      `${file}: ${where}not valid JSON (${message.replace(/\s*in JSON at position \d+.*$/s, '')}); fix the file or write it as YAML`,
    );
  }
}

function parseYaml(text: string, file: string): unknown {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [error] = document.errors;
  if (error !== undefined) {
    const position = error.linePos?.[0];
    const where = position ? `line ${position.line}, column ${position.col}: ` : '';
    const reason = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new UsageError(`${file}: ${where}not valid YAML (${reason})`);
  }
  try {
    return document.toJS();
  } catch (error) {
    // yaml refuses to expand an alias bomb ("Excessive alias count…") only here, in toJS().
    throw new UsageError(`${file}: not valid YAML (${(error as Error).message}); write each entry out instead of nesting aliases`);
  }
}

/**
 * Parses the text of a schedule file (JSON for `.json`, YAML otherwise): a list of entries or
 * `{ schedules: [...] }`. Every entry is validated; any problem throws, naming the file, the entry
 * and the field, and nothing of the file is returned.
 */
export function parseScheduleFile(text: string, file: string, now = Date.now()): ScheduleDefinition[] {
  const data = extname(file).toLowerCase() === '.json' ? parseJson(text, file) : parseYaml(text, file);
  let entries: unknown;
  if (Array.isArray(data)) {
    entries = data;
  } else if (typeof data === 'object' && data !== null) {
    const extra = Object.keys(data).filter((key) => key !== 'schedules');
    if (extra.length > 0)
      throw new UsageError(`${file}: unknown top-level key "${extra[0]}"; a schedule file is a list of entries or { "schedules": [...] }`);
    entries = (data as { schedules?: unknown }).schedules;
    if (!Array.isArray(entries)) throw new UsageError(`${file}: "schedules" must be a list of entries`);
  } else {
    throw new UsageError(
      `${file}: ${data === null || data === undefined ? 'is empty' : 'is not a list of entries'}; write a list of entries or { ` +
        `"schedules": [...] }`,
    );
  }
  return validateScheduleDefinitions(entries as unknown[], file, now);
}

/** Reads and validates a schedule file (see {@link parseScheduleFile}). */
export async function readScheduleFile(path: string, options: { displayName?: string; now?: number } = {}): Promise<ScheduleDefinition[]> {
  const name = options.displayName ?? path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new UsageError(`${name}: cannot read the schedule file (${reason})`, { cause: error });
  }
  return parseScheduleFile(text, name, options.now);
}
