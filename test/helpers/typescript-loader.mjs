// tap's node-arg (package.json): `--import=./test/helpers/typescript-loader.mjs`. Registers the
// hooks that run the repository's TypeScript (typescript-hooks.mjs) and maps stack traces back to it.
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
process.setSourceMapsEnabled(true);
