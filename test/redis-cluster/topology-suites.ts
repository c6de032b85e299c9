// What runs on each Redis topology (cluster, sentinel): the contract suites, a wide chord, two Beats,
// worker operations and failovers mid-burst. The test files start and stop the topology.
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { beat } from '../../plugins/beat/index.js';
import { SCHEDULED_FOR_HEADER, scheduleEntryFor } from '../../plugins/beat/schedule-rules.js';
import { canvas, canvasOf, task } from '../../plugins/canvas/index.js';
import {
  redis,
  RedisBroker,
  RedisLockStore,
  RedisRateLimiter,
  RedisResultBackend,
  RedisRevokeStore,
  RedisScheduleStore,
} from '../../plugins/redis/index.js';
import type { Envelope } from '../../sdk/envelope.js';
import { defineTask, Stem, type Worker } from '../../sdk/index.js';
import {
  brokerContract,
  lockStoreContract,
  rateLimiterContract,
  resultBackendContract,
  revokeStoreContract,
  scheduleStoreContract,
  type ContractFactory,
} from '../contract/index.js';
import { redisBinariesInstalled } from '../helpers/redis-topologies.js';
import { waitFor } from '../helpers/wait.js';

/** A started topology as the suites see it. */
export interface TopologyUnderTest {
  /** `cluster` or `sentinel`, in test names. */
  label: string;
  /** Its Stem URL (`redis+cluster://…`, `redis+sentinel://…`). */
  url: string;
  /** The failovers to run mid-burst: name, and the fault (resolves once the topology is healthy again). */
  failovers: ReadonlyArray<readonly [name: string, fault: () => Promise<unknown>]>;
}

/** Generous ceiling of every wait (ms): failovers on a loaded machine take seconds. */
const CEILING_MS = 120_000;

/** True when the topology can be started here; otherwise fails (CI=true) or skips loudly. */
export function requireRedisBinaries(t: Test): boolean {
  if (redisBinariesInstalled()) return true;
  const message = 'redis-server and redis-cli are not on the PATH: the cluster and sentinel suites start their own servers';
  if (process.env.CI === 'true' || process.env.CI === '1') t.fail(message);
  else {
    console.error(`\n!!! SKIPPING: ${message}\n`);
    t.test(message, { skip: message }, async () => undefined);
  }
  return false;
}

function namespaceFor(label: string): string {
  return `stemtest-${label}-${randomBytes(4).toString('hex')}`;
}

interface Service {
  close(): Promise<void>;
}

/** Each case of a contract gets a fresh namespace on the topology (thrown away with it). */
function factory<T extends Service>(
  topology: TopologyUnderTest,
  connect: (url: string, options: { namespace: string }) => Promise<T>,
): ContractFactory<T> {
  return { name: `redis ${topology.label}`, create: () => connect(topology.url, { namespace: namespaceFor('contract') }) };
}

/** Every contract suite on the topology. */
export async function contractSuites(t: Test, topology: TopologyUnderTest): Promise<void> {
  await brokerContract(
    t,
    factory(topology, (url, options) => RedisBroker.connect(url, options)),
  );
  await resultBackendContract(
    t,
    factory(topology, (url, options) => RedisResultBackend.connect(url, options)),
  );
  await revokeStoreContract(
    t,
    factory(topology, (url, options) => RedisRevokeStore.connect(url, options)),
  );
  await rateLimiterContract(
    t,
    factory(topology, (url, options) => RedisRateLimiter.connect(url, options)),
  );
  await scheduleStoreContract(
    t,
    factory(topology, (url, options) => RedisScheduleStore.connect(url, options)),
  );
  await lockStoreContract(
    t,
    factory(topology, (url, options) => RedisLockStore.connect(url, options)),
  );
}

/** Stems on one namespace of the topology, closed at teardown. */
function stems(t: Test, topology: TopologyUnderTest, label: string): (extra?: Parameters<typeof Stem.create>[0]) => Promise<Stem> {
  const namespace = namespaceFor(label);
  const opened: Stem[] = [];
  t.teardown(async () => {
    for (const stem of opened.reverse()) await stem.close();
  });
  return async (extra = {}) => {
    const stem = await Stem.create({
      ...extra,
      plugins: [redis({ url: topology.url, namespace, blockMs: 500 }), ...(extra.plugins ?? [])],
    });
    opened.push(stem);
    return stem;
  };
}

/** The chord, Beat and worker cases. */
export async function workloadSuites(t: Test, topology: TopologyUnderTest): Promise<void> {
  await t.test(`${topology.label}: a 200-member chord over 3 workers runs its callback once with 200 results in order`, async (t) => {
    const callbacks = new Map<string, number>();
    const member = defineTask({ name: 'wide.member', handler: async (args: { n: number }) => args.n });
    const callback = defineTask({
      name: 'wide.callback',
      handler: async (args: { parent?: number[] }, ctx) => {
        callbacks.set(ctx.id, (callbacks.get(ctx.id) ?? 0) + 1);
        return args.parent;
      },
    });
    const open = stems(t, topology, 'chord');
    const producer = await open({ tasks: [member, callback], plugins: [canvas()] });
    for (let i = 0; i < 3; i++) await (await open({ tasks: [member, callback], plugins: [canvas()] })).worker({ concurrency: 4 }).start();
    const n = 200;
    const chordId = await canvasOf(producer).chord({
      body: Array.from({ length: n }, (_, i) => task(member, { n: i })),
      callback: task(callback, {}),
    });
    t.same(
      await producer.handle(chordId).result({ timeoutMs: CEILING_MS }),
      Array.from({ length: n }, (_, i) => i),
    );
    t.equal(callbacks.get(chordId), 1, 'the callback ran once');
  });

  await t.test(`${topology.label}: two Beats enqueue each every:1s firing exactly once`, async (t) => {
    const open = stems(t, topology, 'beat');
    const published: Envelope[] = [];
    const beats: Stem[] = [];
    for (let i = 0; i < 2; i++) {
      const stem = await open({ plugins: [beat({ tick: '100ms' })] });
      stem.hooks.published.tapPromise('test', async (envelopes) => void published.push(...envelopes));
      beats.push(stem);
    }
    await beats[0]!
      .service('scheduleStore')
      .upsert(scheduleEntryFor({ id: 'every-second', task: 'beat.count', schedule: 'every:1s' }, Date.now()));
    await waitFor(() => published.length >= 4, 'four firings', CEILING_MS);
    for (const stem of beats) await stem.close();
    const slots = published.map((envelope) => envelope.headers[SCHEDULED_FOR_HEADER]!);
    t.ok(new Set(slots).size >= 4, `${new Set(slots).size} slots fired`);
    t.equal(new Set(slots).size, slots.length, 'each slot was enqueued once');
  });

  await t.test(`${topology.label}: a worker of two queues takes tasks from both, delayed ones too, and lists itself`, async (t) => {
    const ran: string[] = [];
    const work = defineTask({ name: 'ops.work', handler: async (args: { tag: string }) => void ran.push(args.tag) });
    const open = stems(t, topology, 'ops');
    const producer = await open({ tasks: [work] });
    const worker = (await open({ tasks: [work] })).worker({ queues: ['ops-a', 'ops-b'], concurrency: 2, heartbeatInterval: '200ms' });
    await worker.start();
    const handles = [
      await producer.enqueue(work, { tag: 'a' }, { queue: 'ops-a' }),
      await producer.enqueue(work, { tag: 'b' }, { queue: 'ops-b' }),
      await producer.enqueue(work, { tag: 'b-later' }, { queue: 'ops-b', notBefore: '300ms' }),
    ];
    for (const handle of handles) await handle.result({ timeoutMs: CEILING_MS });
    t.same([...ran].sort(), ['a', 'b', 'b-later']);
    await waitFor(
      async () => (await producer.service('backend').listWorkers()).some((beat) => beat.workerId === worker.id),
      'the heartbeat',
      CEILING_MS,
    );
    t.same(await producer.service('broker').listQueues(), ['ops-a', 'ops-b'], 'both queues are listed');
  });
}

/** One run of the burst handler. */
interface Run {
  startedAt: number;
  doneAt?: number;
}

/**
 * The failover cases: a burst of tasks over two queues that goes on for as long as the fault, then
 * every task whose enqueue was confirmed must run (lost 0); a task that ran twice must have
 * started before the topology was healthy again (it was in flight), and there are no more of them
 * than the workers could hold at once.
 */
export async function failoverSuites(t: Test, topology: TopologyUnderTest): Promise<void> {
  for (const [name, fault] of topology.failovers) {
    await t.test(`${topology.label}: ${name} mid-burst loses no task; duplicates only of tasks in flight`, async (t) => {
      const runs = new Map<string, Run[]>();
      const step = defineTask({
        name: 'burst.step',
        handler: async (_args: object, ctx) => {
          const run: Run = { startedAt: Date.now() };
          let list = runs.get(ctx.id);
          if (list === undefined) runs.set(ctx.id, (list = []));
          list.push(run);
          await new Promise((resolve) => setTimeout(resolve, 5));
          run.doneAt = Date.now();
        },
      });
      const open = stems(t, topology, 'burst');
      const producer = await open({ tasks: [step] });
      const workers: Worker[] = [];
      const workerCount = 2;
      const concurrency = 8;
      for (let i = 0; i < workerCount; i++) {
        const worker = (await open({ tasks: [step] })).worker({ queues: ['burst-a', 'burst-b'], concurrency });
        await worker.start();
        workers.push(worker);
      }
      const confirmed = new Set<string>();
      let refused = 0;
      let sent = 0;
      const enqueueOne = async (): Promise<void> => {
        // an enqueue the topology refused during the fault is tried again as a new task
        for (;;) {
          try {
            const handle = await producer.enqueue(step, {}, { queue: sent++ % 2 === 0 ? 'burst-a' : 'burst-b' });
            confirmed.add(handle.id);
            return;
          } catch {
            refused++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      };
      // before, during (paced, so that the burst lasts as long as the fault) and after the fault
      for (let i = 0; i < 200; i++) await enqueueOne();
      const faultStartedAt = Date.now();
      let faultEndedAt = 0;
      const faultRun = fault().then(() => {
        faultEndedAt = Date.now();
      });
      while (faultEndedAt === 0) {
        await enqueueOne();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await faultRun;
      for (let i = 0; i < 200; i++) await enqueueOne();
      const lostIds = (): string[] => [...confirmed].filter((id) => !runs.get(id)?.some((run) => run.doneAt !== undefined));
      await waitFor(() => lostIds().length === 0, `all ${confirmed.size} confirmed tasks to run`, CEILING_MS).catch(() => undefined);
      const lost = lostIds();
      const duplicated = [...runs].filter(([, list]) => list.length > 1);
      t.comment(
        `${name}: confirmed ${confirmed.size}, refused enqueues ${refused}, ran ${runs.size}, lost ${lost.length}, duplicates ${duplicated.length}, fault ${faultEndedAt - faultStartedAt} ms`,
      );
      t.equal(lost.length, 0, 'lost 0');
      t.ok(
        duplicated.every(([, list]) => list[0]!.startedAt <= faultEndedAt),
        'every task that ran twice had started before the topology was healthy again',
      );
      t.ok(duplicated.length <= workerCount * concurrency * 2, `duplicates (${duplicated.length}) within what the workers held in flight`);
    });
  }
}
