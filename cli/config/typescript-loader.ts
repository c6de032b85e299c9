import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../sdk/errors.js';

/** Extensions that need a TypeScript loader before `import()`. */
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** Set by whoever registered tsx in this process: registerTypeScript below, or bin/stem.js in a source checkout. */
const REGISTERED = Symbol.for('stem.typescript-loader');

type Registry = typeof globalThis & { [REGISTERED]?: Promise<void> };

/** Whether `file` is TypeScript, so that importing it needs a loader. */
export function isTypeScriptFile(file: string): boolean {
  return TYPESCRIPT_EXTENSIONS.has(extname(file).toLowerCase());
}

/** tsx's ESM API, from stem's own dependencies first, then from the project in `cwd` (a global stem). */
async function importTsx(cwd: string): Promise<{ register: () => unknown }> {
  try {
    return (await import('tsx/esm/api')) as { register: () => unknown };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
  }
  const fromProject = createRequire(join(cwd, 'package.json')).resolve('tsx/esm/api');
  return (await import(pathToFileURL(fromProject).href)) as { register: () => unknown };
}

/**
 * Registers tsx once per process. Only TypeScript files call this: `stem --help`, a `.js`/`.mjs`
 * config and compiled task modules never load tsx (nor esbuild under it), which keeps start-up fast.
 */
function registerTypeScript(file: string, cwd: string): Promise<void> {
  const registry = globalThis as Registry;
  registry[REGISTERED] ??= importTsx(cwd).then(
    (tsx) => {
      tsx.register();
    },
    (error: unknown) => {
      delete registry[REGISTERED];
      throw new ConfigError(
        `${file} is TypeScript, and stem loads TypeScript files with tsx, which this project does not have: ` +
          'run `npm install --save-dev tsx`, or write the file as .js or .mjs',
        { cause: error },
      );
    },
  );
  return registry[REGISTERED];
}

/** Imports a user's module (config, task registry), registering tsx first when it is TypeScript. */
export async function importUserModule(file: string, cwd: string = process.cwd()): Promise<Record<string, unknown>> {
  if (isTypeScriptFile(file)) await registerTypeScript(file, cwd);
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}
