// Issue 16: a command can reach Redis long after the client made it (it waited in ioredis' offline
// queue while the server was down, or was re-sent after a reconnect). A lease it writes must still
// run its whole length from then on; measured from the client's "now" it was born expired, and the
// next fetch of any consumer took the task while its first holder ran it.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { BrokerConsumer } from '../../sdk/contracts/index.js';
import { RedisBroker } from '../../plugins/redis/index.js';
import { CLOCK_SLACK_MS, fetchWithin, makeEnvelope, retryOnStall, STALLED } from '../contract/support.js';
import { OwnedRedisServer, redisServerInstalled } from '../chaos/owned-redis-server.js';
import { testNamespace } from './redis-test-support.js';

/**
 * The lease of the tasks; the server holds every command 500 ms longer than it, as the chaos restarts did. The cases
 * need the late lease to outlast the next fetch: when a stall of this process made that fetch come after the lease's
 * end (seen from leaseExpiresAt), the case runs again with a 4x lease (retryOnStall, 3 tries: 2.5 s, 10 s, 40 s).
 */
const LEASE_MS = 2_500;

t.setTimeout(300_000);

if (await haveRedisServer()) {
  // CLIENT PAUSE stalls every client of the server, so these tests get a server of their own.
  const server = await OwnedRedisServer.start();
  t.teardown(() => server.stop());

  /** A broker, two consumers of one queue, and an admin connection, all on the owned server. */
  async function setUp(
    t: Test,
  ): Promise<{ broker: RedisBroker; first: BrokerConsumer; second: BrokerConsumer; admin: Redis; queue: string }> {
    const broker = await RedisBroker.connect(server.url, { namespace: testNamespace('late'), blockMs: 200 });
    const queue = 'late';
    const first = await broker.consumer({ queues: [queue], consumerId: 'w1' });
    const second = await broker.consumer({ queues: [queue], consumerId: 'w2' });
    const admin = new Redis(server.url);
    t.teardown(async () => {
      admin.disconnect();
      await first.close();
      await second.close();
      await broker.close();
    });
    return { broker, first, second, admin, queue };
  }

  t.test(
    'a fetch that reaches Redis after its lease would have run out leases for the whole lease: another consumer does not take the task',
    async (t) => {
      await retryOnStall(
        t,
        LEASE_MS,
        async (leaseMs, lastTry) => {
          const { broker, first, second, admin, queue } = await setUp(t);
          const held = makeEnvelope(queue, { visibilityTimeoutMs: leaseMs });
          await broker.publish([held]);
          await admin.call('CLIENT', 'PAUSE', leaseMs + 500, 'ALL');
          const got = await fetchWithin(first, 1, 60_000);
          t.same(
            got.map((d) => d.envelope.id),
            [held.id],
            'the late fetch gets the task',
          );
          const next = makeEnvelope(queue, { visibilityTimeoutMs: leaseMs });
          await broker.publish([next]);
          const other = await fetchWithin(second, 5, 30_000);
          if (other.length > 1 && Date.now() >= got[0]!.leaseExpiresAt - CLOCK_SLACK_MS && !lastTry) return STALLED;
          t.same(
            other.map((d) => d.envelope.id),
            [next.id],
            'the other consumer gets only the new task, not the one just leased',
          );
          await broker.ack([...got, ...other]);
        },
        3,
      );
    },
  );

  t.test('a lease renewal that reaches Redis late renews for the whole lease', async (t) => {
    await retryOnStall(
      t,
      LEASE_MS,
      async (leaseMs, lastTry) => {
        const { broker, first, second, admin, queue } = await setUp(t);
        const held = makeEnvelope(queue, { visibilityTimeoutMs: leaseMs });
        await broker.publish([held]);
        const got = await fetchWithin(first, 1, 30_000);
        t.same(
          got.map((d) => d.envelope.id),
          [held.id],
        );
        await admin.call('CLIENT', 'PAUSE', leaseMs + 500, 'ALL');
        await broker.extendLeases(got, leaseMs);
        const next = makeEnvelope(queue, { visibilityTimeoutMs: leaseMs });
        await broker.publish([next]);
        const other = await fetchWithin(second, 5, 30_000);
        // extendLeases moved got[0].leaseExpiresAt to the renewed lease's end.
        if (other.length > 1 && Date.now() >= got[0]!.leaseExpiresAt - CLOCK_SLACK_MS && !lastTry) return STALLED;
        t.same(
          other.map((d) => d.envelope.id),
          [next.id],
          'the renewed task stays with its holder',
        );
        await broker.ack([...got, ...other]);
      },
      3,
    );
  });
}

async function haveRedisServer(): Promise<boolean> {
  if (await redisServerInstalled()) return true;
  const message = 'redis-server is not on the PATH: these tests start their own (CLIENT PAUSE would stall the shared one)';
  if (process.env.CI === 'true') t.fail(message);
  else t.test(message, { skip: message }, async () => undefined);
  return false;
}
