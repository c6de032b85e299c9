import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every depth, so equal arguments give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The default uniqueness key of a task: its name and a SHA-256 of its canonical arguments. */
export function defaultUniqueKey(task: string, args: unknown): string {
  return `${task}:${createHash('sha256').update(canonicalJson(args)).digest('base64url')}`;
}
