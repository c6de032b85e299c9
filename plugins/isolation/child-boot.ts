import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../sdk/errors.js';

/** The child runtime next to this file: the TypeScript source in a checkout, the compiled file in a package. */
export const CHILD_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './child-main.ts' : './child-main.js', import.meta.url).href;

const TYPESCRIPT = /\.(c|m)?tsx?$/i;

/** tsx's ESM API as a URL a child can import: stem's own dependency first, then the project's in `cwd`. */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    try {
      return pathToFileURL(createRequire(join(process.cwd(), 'package.json')).resolve('tsx/esm/api')).href;
    } catch (error) {
      throw new ConfigError(
        `isolation: a TypeScript task module needs tsx in the child, and tsx was not found (${(error as Error).message}); run ` +
          `\`npm install --save-dev tsx\`, or point handlerModule/modules at compiled .js files`,
      );
    }
  }
}

/** What a child runs first: register tsx when any module it will import is TypeScript, then import the runtime. */
export interface BootScript {
  /** A CommonJS script for `new Worker(code, { eval: true })`. */
  thread: string;
  /** An ES module for `node --input-type=module -e`. */
  process: string;
}

/** The boot scripts for children that will import `modules` (the runtime, setup and task modules). */
export function bootScript(modules: readonly string[]): BootScript {
  const typescript = [CHILD_ENTRY, ...modules].some((url) => TYPESCRIPT.test(new URL(url).pathname));
  const register = typescript ? `(await import(${JSON.stringify(tsxApi())})).register();` : '';
  const body = `${register} await import(${JSON.stringify(CHILD_ENTRY)});`;
  const failed =
    "(error) => { process.stderr.write('stem isolation child failed to start: ' + " +
    "(error && error.stack || error) + '\\n'); process.exit(70); }";
  return {
    thread: `(async () => { ${body} })().catch(${failed});`,
    process: `try { ${body} } catch (error) { (${failed})(error); }`,
  };
}

/** A module given as a path, a file URL string or a URL, as a file URL string (relative paths from `cwd`). */
export function moduleUrl(module: string | URL, where: string): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== 'string' || module === '')
    throw new ConfigError(`${where} must be a module path or URL (got ${JSON.stringify(module)})`);
  if (/^(file|data):/.test(module)) return module;
  return pathToFileURL(resolve(module)).href;
}
