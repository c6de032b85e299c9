import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { printStatus } from '../../cli/commands/result/print-status.js';
import { Stem } from '../../sdk/kernel.js';
import { defineTask } from '../../sdk/task.js';
import { canvas, canvasOf, task } from '../../plugins/canvas/index.js';
import { directive, readMarkdownBlocks } from '../helpers/markdown-blocks.js';
import { repoRoot } from '../helpers/run-stem.js';

// Issue 26, item 5: a failed chain or chord read `task <id> failed: ChainStepFailedError: chain …`
// while docs/canvas.md showed another text. The page's examples (blocks marked
// `<!-- canvas-error: … -->`) are run here as printed: the chain and the chord of the page fail,
// and what `stem result get` prints and what `result()` throws must read as the page shows,
// ids aside (`0199…` stands for a task id).

const blocks = new Map(
  readMarkdownBlocks(join(repoRoot, 'docs/canvas.md'), 'docs/canvas.md').flatMap((block) => {
    const mark = directive(block, 'canvas-error');
    return mark === undefined ? [] : [[mark.value, block.code.trim()] as const];
  }),
);

/** The page's text as a pattern: literal, except that `0199…` is any task id. */
function pageText(key: string): RegExp {
  const text = blocks.get(key);
  if (text === undefined) throw new Error(`docs/canvas.md has no block marked <!-- canvas-error: ${key} -->`);
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/0199…/g, '[0-9a-f]{8}-[0-9a-f-]{27}')}$`);
}

/** The `error` line `stem result get` prints for a status. */
function errorLine(status: Parameters<typeof printStatus>[1]): string {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk) => (text += chunk));
  printStatus(out, status, false);
  return text.split('\n').find((line) => line.startsWith('error ')) ?? '';
}

const fetchOrder = defineTask({ name: 'orders.fetch', handler: async (_args: {}) => ({ orderId: 42 }) });
const price = defineTask({
  name: 'billing.price',
  handler: async (_args: {}): Promise<number> => {
    throw new TypeError('no price for SKU 7');
  },
});
const emailReceipt = defineTask({ name: 'billing.email-receipt', handler: async (_args: {}) => 'sent' });
const renderReport = defineTask({
  name: 'reports.render',
  handler: async (args: { week: string }) => {
    if (args.week === '2024-W29') throw new TypeError('week 29 has no data');
    return args.week;
  },
});

t.test('docs/canvas.md marks the four error texts it shows', async (t) => {
  t.same([...blocks.keys()].sort(), ['chain status', 'chain thrown', 'chord status', 'chord thrown']);
});

t.test('a failed chain and a failed chord read as docs/canvas.md shows, in result get and in result()', async (t) => {
  const stem = await Stem.create({ tasks: [fetchOrder, price, emailReceipt, renderReport], plugins: [canvas()] });
  t.teardown(() => stem.close());
  const worker = stem.worker();
  await worker.start();
  t.teardown(() => worker.stop());
  const c = canvasOf(stem);

  const chainId = await c.chain([task(fetchOrder, {}), task(price, {}), task(emailReceipt, { to: 'a@b.c' })]);
  const chainError = await stem
    .handle(chainId)
    .result({ timeoutMs: 60_000 })
    .then(
      () => undefined,
      (error: Error) => error,
    );
  t.match(chainError, { name: 'TaskFailedError', errorType: 'ChainStepFailedError' });
  t.match(chainError?.message, pageText('chain thrown'));
  t.match(errorLine(await stem.status(chainId)), pageText('chain status'));

  const chordId = await c.chord({
    body: [task(renderReport, { week: '2024-W28' }), task(renderReport, { week: '2024-W29' })],
    callback: task(emailReceipt, { to: 'finance@example.com' }),
  });
  const chordError = await stem
    .handle(chordId)
    .result({ timeoutMs: 60_000 })
    .then(
      () => undefined,
      (error: Error) => error,
    );
  t.match(chordError, { name: 'TaskFailedError', errorType: 'ChordMemberFailedError' });
  t.match(chordError?.message, pageText('chord thrown'));
  t.match(errorLine(await stem.status(chordId)), pageText('chord status'));
});
