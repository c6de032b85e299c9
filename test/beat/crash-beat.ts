// A Beat process for the Beat crash test. It fires the due entries of a Redis or Postgres store and
// prints one line per publish and per firing; with BEAT_CRASH_AT set it kills itself with SIGKILL
// at that point of its first scheduled enqueue: `enqueue` (nothing published yet) or `published`
// (published, the run not yet recorded).
import { beat } from '../../plugins/beat/index.js';
import { postgres } from '../../plugins/postgres/index.js';
import { redis } from '../../plugins/redis/index.js';
import { SCHEDULE_ID_HEADER } from '../../plugins/beat/schedule-rules.js';
import { Stem, type StemPlugin } from '../../sdk/index.js';

const env = process.env;
const crashAt = env.BEAT_CRASH_AT;
if (crashAt !== undefined && crashAt !== 'enqueue' && crashAt !== 'published')
  throw new Error(`BEAT_CRASH_AT must be enqueue or published, got ${crashAt}`);

const store: StemPlugin =
  env.BEAT_STORE === 'postgres'
    ? postgres({ url: env.BEAT_URL!, schema: env.BEAT_NAMESPACE!, migrate: false })
    : redis({ url: env.BEAT_URL!, namespace: env.BEAT_NAMESPACE! });

/** SIGKILL: no handler, no flush, no finally runs, as when the machine or the OOM killer takes it. */
const die = (): Promise<never> => {
  process.kill(process.pid, 'SIGKILL');
  return new Promise(() => undefined);
};

const crash: StemPlugin = {
  name: 'crash-point',
  apply(stem) {
    stem.hooks.enqueue.tapPromise('crash-point', async (envelope) => {
      if (crashAt === 'enqueue' && envelope.headers[SCHEDULE_ID_HEADER] !== undefined) await die();
      return envelope;
    });
    stem.hooks.published.tapPromise('crash-point', async (envelopes) => {
      for (const envelope of envelopes) process.stdout.write(`published ${envelope.id}\n`);
      if (crashAt === 'published' && envelopes.some((envelope) => envelope.headers[SCHEDULE_ID_HEADER] !== undefined)) await die();
    });
  },
};

const stem = await Stem.create({
  plugins: [
    store,
    crash,
    beat({
      tick: '100ms',
      lockTtl: env.BEAT_LOCK_TTL ?? '1s',
      onFiring: (report) => process.stdout.write(`fired ${report.scheduleId} ${report.outcome} ${report.taskId ?? '-'}\n`),
      onError: (error) => process.stdout.write(`error ${(error as Error).message}\n`),
    }),
  ],
});
const stop = (): void => void stem.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdout.write('crash-beat ready\n');
