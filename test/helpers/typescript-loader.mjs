// tap's node-arg (package.json): `--import=./test/helpers/typescript-loader.mjs`. Registers the
// hooks that run the repository's TypeScript (bin/source-hooks.mjs, which `stem` in a checkout uses as
// well) and maps stack traces back to it.
import { register } from 'node:module';

register('../../bin/source-hooks.mjs', import.meta.url);
process.setSourceMapsEnabled(true);
