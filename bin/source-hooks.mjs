// Module hooks that run the repository's TypeScript in a source checkout: in the test processes
// (tap's node-arg imports test/helpers/typescript-loader.mjs, which registers this file) and in
// `stem` run from the checkout (bin/stem.js). They do one thing: compile `.ts` files with esbuild
// (cached on disk by content) and map a relative `./x.js` import to `./x.ts` when only the
// TypeScript exists. Everything else — node_modules, JSON, `.js` — goes to Node's own resolver
// and loader untouched. tsx did this job and much more (tsconfig paths, CommonJS, extension
// probing) for every module a process loads: ~0.6 CPU-s more per test process, ~0.8 more per
// `stem` command. `stem` resolves to the sources through the `stem-source` export condition
// instead. The published package does not ship this file (package.json "files").
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform, version } from 'esbuild';

const TYPESCRIPT = /\.m?ts$/;
const CACHE = join(tmpdir(), `stem-test-ts-${process.getuid?.() ?? 'user'}`);
/** What tsconfig.json says that changes the emitted code. */
const TSCONFIG = { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true, experimentalDecorators: false } };
const SALT = `${version}:${JSON.stringify(TSCONFIG)}:1`;

/** Relative and absolute `.js` specifiers from our own files find the `.ts` beside them. */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (
    parent?.startsWith('file:') &&
    !parent.includes('/node_modules/') &&
    specifier.endsWith('.js') &&
    (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/') || specifier.startsWith('file:'))
  ) {
    const url = new URL(specifier, parent);
    if (!existsSync(url)) {
      const typescript = new URL(`${url.href.slice(0, -3)}.ts`);
      if (existsSync(typescript)) return { url: typescript.href, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

/** `.ts` files load as ES modules compiled by esbuild, with an inline source map. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TYPESCRIPT.test(url)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha1').update(SALT).update(path).update('\0').update(source).digest('hex');
  const cached = join(CACHE, `${key}.js`);
  let code;
  try {
    code = readFileSync(cached, 'utf8');
  } catch {
    ({ code } = await transform(source, {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: path,
      tsconfigRaw: TSCONFIG,
    }));
    mkdirSync(CACHE, { recursive: true });
    const partial = `${cached}.${process.pid}.tmp`;
    writeFileSync(partial, code);
    renameSync(partial, cached);
  }
  return { format: 'module', source: code, shortCircuit: true };
}
