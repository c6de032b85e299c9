// A CommonJS program: require('stem') loads the ESM package (require of ESM, Node 20.19+ and 22.12+).
const { Stem, defineTask } = require('stem');
const { redis } = require('stem/plugins/redis');

const add = defineTask({ name: 'math.add', handler: async ({ a, b }) => a + b });
(async () => {
  const stem = await Stem.create({ tasks: [add] });
  const worker = stem.worker({ queues: ['default'] });
  await worker.start();
  const sum = await (await stem.enqueue(add, { a: 4, b: 5 })).result({ timeoutMs: 30_000 });
  await worker.stop();
  await stem.close();
  console.log(JSON.stringify({ sum, redis: typeof redis }));
})();
