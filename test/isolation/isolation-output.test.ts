// What an isolated handler writes with console.log / console.error reaches the output of the
// worker running it, each line tagged `name[id]` as the worker's own log lines are.
import { Writable } from 'node:stream';
import t from 'tap';
import { tagTaskOutput } from '../../plugins/isolation/task-output-tag.js';
import { redis } from '../../plugins/redis/index.js';
import { Stem, type TaskDefinition } from '../../sdk/index.js';
import { startStem } from '../helpers/run-stem.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { REDIS_URL, requireRedis } from '../redis/redis-test-support.js';
import * as isolated from './isolated-tasks.js';

const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);

t.test('each line written while a task runs is tagged, however the writes split it; none outside a task', async (t) => {
  let written = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.toString();
      callback();
    },
  }) as unknown as NodeJS.WriteStream;
  let tag: string | undefined;
  tagTaskOutput(stream, () => tag);
  stream.write('before\n');
  tag = 'job[1] ';
  stream.write('one\ntwo\n');
  stream.write('three, ');
  stream.write('still three\n\nfive\n');
  tag = undefined;
  stream.write('after\n');
  t.equal(written, 'before\njob[1] one\njob[1] two\njob[1] three, still three\njob[1] \njob[1] five\nafter\n');
});

for (const pool of ['threads', 'processes'] as const) {
  t.test(
    `Redis, stem worker start --pool ${pool}: a handler's console.log and console.error lines reach the worker's stdout and stderr, tagged with the task`,
    async (t) => {
      if (!(await requireRedis(t))) return;
      const queue = uniqueName('iso-out');
      const connection = ['--broker', REDIS_URL, '--backend', REDIS_URL, '--registry', 'test/isolation/isolated-tasks.ts'];
      const cli = await startStem(['worker', 'start', '--queues', queue, '--pool', pool, ...connection], {
        env: { STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' },
      });
      t.teardown(() => cli.stop('SIGKILL'));
      let stdout = '';
      let stderr = '';
      cli.child.stdout!.on('data', (chunk) => (stdout += chunk));
      cli.child.stderr!.on('data', (chunk) => (stderr += chunk));
      await cli.waitForOutput(/ready on .*consuming/, 120_000);

      const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL })], tasks });
      t.teardown(async () => {
        await stem.broker.purge(queue);
        await stem.close();
      });
      const word = uniqueName('word');
      const handle = await stem.enqueue(isolated.chatty, { word }, { queue });
      const child = await handle.result({ timeoutMs: 120_000 });
      t.match(child, new RegExp(`^${pool === 'threads' ? 'thread' : 'process'}:`), 'it ran in a child');
      const tag = `iso.chatty[${handle.id}]`;
      await waitFor(
        () => stdout.includes(`${tag} partial ${word} line\n`) && stderr.includes(`${tag} second line ${word}\n`),
        'the lines',
        120_000,
      );
      t.match(stdout, `${tag} out ${word}\n`, 'console.log reached stdout, tagged');
      t.match(stdout, `${tag} partial ${word} line\n`, 'a line written in two parts is tagged once');
      t.match(stderr, `${tag} err ${word}\n`, 'console.error reached stderr, tagged');
      t.match(stderr, `${tag} second line ${word}\n`, 'each line of a multi-line write is tagged');
      t.notMatch(stdout, `${tag} err`, 'stderr lines stay on stderr');
      await cli.waitForOutput(new RegExp(`iso\\.chatty\\[${handle.id}\\] succeeded`), 120_000);
    },
  );
}
