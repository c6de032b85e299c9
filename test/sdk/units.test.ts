import t from 'tap';
import {
  backoffDelay,
  decideRetry,
  formatDuration,
  parseDuration,
  resolveWhen,
  Retry,
  Unrecoverable,
  uuidv7,
  uuidv7Time,
} from '../../sdk/index.js';

t.test('durations parse from numbers and unit strings, and bad ones name themselves', async (t) => {
  t.equal(parseDuration(1500), 1500);
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('5s'), 5_000);
  t.equal(parseDuration('1.5m'), 90_000);
  t.equal(parseDuration('1h'), 3_600_000);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('250'), 250);
  t.throws(() => parseDuration('5 weeks', 'timeLimit'), /timeLimit: "5 weeks" is not a duration/);
  t.throws(() => parseDuration(-1));
  t.equal(resolveWhen('2030-01-01T00:00:00Z', 0), Date.parse('2030-01-01T00:00:00Z'));
  t.equal(resolveWhen('5m', 1_000), 301_000);
  t.equal(formatDuration(850), '850ms');
  t.equal(formatDuration(1_250), '1.3s');
  t.equal(formatDuration(185_000), '3m 5s');
});

t.test('UUIDv7 ids are unique, ordered by creation and carry their time', async (t) => {
  const ids = Array.from({ length: 10_000 }, () => uuidv7(1_700_000_000_000));
  t.equal(new Set(ids).size, ids.length, 'unique within one millisecond');
  t.same([...ids].sort(), ids, 'sorted in creation order');
  t.equal(uuidv7Time(uuidv7(1_700_000_000_123)) >= 1_700_000_000_123, true);
  t.match(uuidv7(), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

t.test('backoff is exponential, linear or fixed, and capped', async (t) => {
  t.same(
    [0, 1, 2, 3].map((n) => backoffDelay({ delayMs: 100 }, n)),
    [100, 200, 400, 800],
  );
  t.same(
    [0, 1, 2].map((n) => backoffDelay({ delayMs: 100, backoff: 'linear' }, n)),
    [100, 200, 300],
  );
  t.same(
    [0, 5].map((n) => backoffDelay({ delayMs: 100, backoff: 'fixed' }, n)),
    [100, 100],
  );
  t.equal(backoffDelay({ delayMs: 100, maxDelayMs: 250 }, 10), 250);
});

t.test('retry decisions follow attempts, jitter and the error kind', async (t) => {
  t.same(decideRetry(new Error('x'), 0, 2, { delayMs: 100, jitter: false }), { retry: true, delayMs: 100 });
  t.same(
    decideRetry(new Error('x'), 0, 2, { delayMs: 100 }, () => 0),
    { retry: true, delayMs: 50 },
    'jitter keeps at least half',
  );
  t.same(
    decideRetry(new Error('x'), 0, 2, { delayMs: 100 }, () => 1),
    { retry: true, delayMs: 100 },
  );
  t.same(decideRetry(new Error('x'), 2, 2, undefined), { retry: false, reason: 'max-retries-exhausted' });
  t.same(decideRetry(new Unrecoverable('no'), 0, 5, undefined), { retry: false, reason: 'unrecoverable' });
  t.same(decideRetry(new Retry({ countdownMs: 7 }), 0, 1, undefined), { retry: true, delayMs: 7 });
  t.same(decideRetry(new Retry({ countdownMs: 7 }), 1, 1, undefined), { retry: false, reason: 'max-retries-exhausted' });
  t.same(decideRetry(new TypeError('x'), 0, 3, { dontRetryOn: ['TypeError'] }), { retry: false, reason: 'unrecoverable' });
  t.same(decideRetry(Object.assign(new Error('x'), { code: 'ECONNRESET' }), 0, 3, { retryOn: ['ECONNRESET'], jitter: false, delayMs: 1 }), {
    retry: true,
    delayMs: 1,
  });
  t.same(decideRetry(new Error('x'), 0, 3, { retryOn: (error) => (error as Error).message === 'y' }), {
    retry: false,
    reason: 'unrecoverable',
  });
});

t.test('maskUrl hides passwords in the user part and in the query string', async (t) => {
  const { maskUrl } = await import('../../sdk/index.js');
  t.equal(maskUrl('redis://user:secret@host:6379/1'), 'redis://user:***@host:6379/1');
  t.equal(maskUrl('postgres://db/app?password=secret&sslmode=require'), 'postgres://db/app?password=***&sslmode=require');
  t.equal(maskUrl('redis://host:6379'), 'redis://host:6379');
});
