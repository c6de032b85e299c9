#!/usr/bin/env node
// The stem binary. Installed (under node_modules) it runs the compiled CLI in dist/ and loads no
// TypeScript tooling: cli/config/typescript-loader.ts registers tsx only when a user's file is
// TypeScript. In a source checkout it runs cli/main.ts from the sources instead, compiled by the
// checkout's esbuild hooks (bin/source-hooks.mjs, as the tests load them), so development never
// runs a stale build; STEM_CLI_FROM=dist|source overrides the choice (the start-up bench uses dist).
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// A closed pipe (`stem queues list | head`) ends the command quietly.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const installed = fileURLToPath(import.meta.url)
  .split(sep)
  .includes('node_modules');
const from = process.env.STEM_CLI_FROM || (installed ? 'dist' : 'source');
let main;
if (from === 'source') {
  const { register } = await import('node:module');
  // `import 'stem'` in the checkout's own configs and fixtures resolves to the sources, not dist/.
  register('./source-condition.js', import.meta.url);
  // The checkout's TypeScript (ES modules all: one package.json, "type": "module") compiles through
  // esbuild; cli/config/typescript-loader.ts still registers tsx for a TypeScript config or registry
  // outside the checkout (the symbol names the checkout's root, which needs no tsx).
  register('./source-hooks.mjs', import.meta.url);
  process.setSourceMapsEnabled(true);
  globalThis[Symbol.for('stem.source-checkout')] = fileURLToPath(new URL('..', import.meta.url));
  ({ main } = await import('../cli/main.ts'));
} else {
  // Node 22.1+ keeps compiled code of the CLI's modules in a disk cache between runs (a no-op on 20).
  const { enableCompileCache } = await import('node:module');
  enableCompileCache?.();
  ({ main } = await import('../dist/cli/main.js'));
}
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Long-lived handles (a Redis socket a plugin forgot to close) must not keep a finished command alive.
setTimeout(() => process.exit(code), 200).unref();
