#!/usr/bin/env node
// The stem binary: registers tsx so that stem.config.ts, --registry modules and the CLI itself
// load as TypeScript without a build step, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
// A closed pipe (`stem queues list | head`) ends the command quietly.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
const { main } = await import('../cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Long-lived handles (a Redis socket a plugin forgot to close) must not keep a finished command alive.
setTimeout(() => process.exit(code), 200).unref();
