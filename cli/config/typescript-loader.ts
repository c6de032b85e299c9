import { existsSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../sdk/errors.js';

/** Extensions that need a TypeScript loader before `import()`. */
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** Set by whoever registered tsx in this process: registerTypeScript below. */
const REGISTERED = Symbol.for('stem.typescript-loader');

/**
 * Set by bin/stem.js run from a source checkout: the checkout's root (with a trailing separator),
 * whose TypeScript that process already compiles (bin/source-hooks.mjs), so its files need no tsx.
 */
const SOURCE_CHECKOUT = Symbol.for('stem.source-checkout');

type Registry = typeof globalThis & { [REGISTERED]?: Promise<void> };

/** Whether `file` is TypeScript, so that importing it needs a loader. */
export function isTypeScriptFile(file: string): boolean {
  return TYPESCRIPT_EXTENSIONS.has(extname(file).toLowerCase());
}

/**
 * Whether tsx would compile `file`, a `.ts`/`.tsx` file, to CommonJS: its nearest package.json has
 * no `"type": "module"` (one that does not parse is left to Node to report). `.mts` and `.cts` say their format themselves.
 */
function isCommonJsScope(file: string): boolean {
  const extension = extname(file).toLowerCase();
  if (extension === '.mts' || extension === '.cts') return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const packageJson = join(dir, 'package.json');
    if (existsSync(packageJson)) {
      try {
        return (JSON.parse(readFileSync(packageJson, 'utf8')) as { type?: unknown } | null)?.type !== 'module';
      } catch {
        return false;
      }
    }
    if (dirname(dir) === dir) return true;
  }
}

/** The files loadAsEsModule registered, once each. */
const esModuleFiles = new Set<string>();

/**
 * Makes Node load `url` as an ES module whatever its package.json says. A stem.config.ts or
 * --registry module of a project without "type": "module" is CommonJS to tsx, and importing that
 * from the CLI fails ("Cannot require() ES Module … in a cycle"); loaded as an ES module it works,
 * and the modules it imports keep their own format. tsx's resolve keeps a format already set, and
 * its load compiles by that format.
 */
function loadAsEsModule(url: string): void {
  if (esModuleFiles.has(url)) return;
  esModuleFiles.add(url);
  const hook =
    'export async function resolve(specifier, context, next) { const resolved = await next(specifier, context); ' +
    `return resolved.url === ${JSON.stringify(url)} ? { ...resolved, format: 'module' } : resolved; }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
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

/** Whether `file` belongs to the source checkout this process runs from (bin/stem.js), outside its node_modules. */
function inSourceCheckout(file: string): boolean {
  const root = (globalThis as { [SOURCE_CHECKOUT]?: unknown })[SOURCE_CHECKOUT];
  if (typeof root !== 'string') return false;
  const path = resolve(file);
  return path.startsWith(root) && !path.slice(root.length).split(sep).includes('node_modules');
}

/** Imports a user's module (config, task registry), registering tsx first when it is TypeScript; a `.ts` one loads as an ES module. */
export async function importUserModule(file: string, cwd: string = process.cwd()): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  if (isTypeScriptFile(file) && !inSourceCheckout(file)) {
    await registerTypeScript(file, cwd);
    if (isCommonJsScope(file)) loadAsEsModule(url);
  }
  return (await import(url)) as Record<string, unknown>;
}
