import { PassThrough } from 'node:stream';
import t from 'tap';
import { TtyProgress } from '../../cli/output/progress.js';

function stream(isTTY: boolean): { out: PassThrough & { isTTY?: boolean }; text: () => string } {
  const out = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  out.on('data', (chunk) => (text += chunk));
  return { out, text: () => text };
}

t.test('progress draws one rewritten line on a TTY and clears it when done', async (t) => {
  const { out, text } = stream(true);
  const progress = new TtyProgress(out, 'enqueue math.add');
  progress.update('1000 of 3000');
  progress.update('2000 of 3000');
  progress.done();
  t.equal(text(), '\r\x1b[2Kenqueue math.add: 1000 of 3000\r\x1b[2Kenqueue math.add: 2000 of 3000\r\x1b[2K');
});

t.test('progress writes nothing when the stream is not a TTY (pipes, scripts, CI)', async (t) => {
  const { out, text } = stream(false);
  const progress = new TtyProgress(out, 'waiting');
  progress.update('3s of 30s');
  progress.done();
  t.equal(text(), '');
});
