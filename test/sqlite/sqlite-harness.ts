import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A directory of its own for one test file's database files, removed by `cleanup`. */
export function tempDir(label = 'sqlite'): { dir: string; file(name?: string): string; url(name?: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `stem-${label}-`));
  return {
    dir,
    file: (name = 'stem.db') => join(dir, name),
    url: (name = 'stem.db') => `sqlite://${join(dir, name)}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A namespace no other test uses. */
export function uniqueNamespace(prefix = 'ns'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
