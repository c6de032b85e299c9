/**
 * One side (producer or worker) of one system, in its own process: `child.ts <role> <system>`
 * with the servers in BENCH_CHILD_SERVERS. It answers requests from bench/index.ts over IPC.
 */
import { preciseNow } from './stats.js';
import {
  startRecorder,
  type BenchPayload,
  type ProducerSide,
  type Servers,
  type SystemId,
  type WorkerSide,
} from './systems/bench-system.js';
import type { ChildReply, ChildRequest } from './child-link.js';

type Role = 'producer' | 'worker';

async function openProducer(system: SystemId, servers: Servers): Promise<ProducerSide> {
  switch (system) {
    case 'stem-redis':
    case 'stem-postgres':
    case 'stem-postgres-ignore': {
      const { StemProducer } = await import('./systems/stem-system.js');
      return StemProducer.open(system === 'stem-redis' ? 'redis' : 'postgres', servers, {
        ignoreResult: system === 'stem-postgres-ignore',
      });
    }
    case 'bullmq': {
      const { BullmqProducer } = await import('./systems/bullmq-system.js');
      return BullmqProducer.open(servers);
    }
    case 'redis-floor': {
      const { FloorProducer } = await import('./systems/floor-system.js');
      return FloorProducer.open(servers);
    }
    case 'graphile-worker': {
      const { GraphileProducer } = await import('./systems/graphile-system.js');
      return GraphileProducer.open(servers);
    }
    case 'pg-boss': {
      const { PgBossProducer } = await import('./systems/pgboss-system.js');
      return PgBossProducer.open(servers);
    }
    case 'postgres-floor': {
      const { PgFloorProducer } = await import('./systems/pg-floor-system.js');
      return PgFloorProducer.open(servers);
    }
    case 'postgres-floor-model': {
      const { PgFloorProducer, stemTables } = await import('./systems/pg-floor-system.js');
      return PgFloorProducer.open(servers, stemTables);
    }
    default:
      throw new Error(`no producer for ${system}`);
  }
}

async function openWorker(system: SystemId, servers: Servers): Promise<WorkerSide> {
  switch (system) {
    case 'stem-redis':
    case 'stem-redis-telemetry':
    case 'stem-postgres':
    case 'stem-postgres-ignore': {
      const { StemWorker } = await import('./systems/stem-system.js');
      return StemWorker.open(system.startsWith('stem-postgres') ? 'postgres' : 'redis', servers, system === 'stem-redis-telemetry');
    }
    case 'bullmq': {
      const { BullmqWorker } = await import('./systems/bullmq-system.js');
      return BullmqWorker.open(servers);
    }
    case 'redis-floor': {
      const { FloorWorker } = await import('./systems/floor-system.js');
      return FloorWorker.open(servers);
    }
    case 'graphile-worker': {
      const { GraphileWorker } = await import('./systems/graphile-system.js');
      return GraphileWorker.open(servers);
    }
    case 'pg-boss': {
      const { PgBossWorker } = await import('./systems/pgboss-system.js');
      return PgBossWorker.open(servers);
    }
    case 'postgres-floor': {
      const { PgFloorWorker } = await import('./systems/pg-floor-system.js');
      return PgFloorWorker.open(servers);
    }
    case 'postgres-floor-model': {
      const { PgFloorWorker, stemTables } = await import('./systems/pg-floor-system.js');
      return PgFloorWorker.open(servers, stemTables);
    }
  }
}

function payloads(from: number, count: number): BenchPayload[] {
  const t0 = preciseNow();
  const out: BenchPayload[] = new Array(count);
  for (let k = 0; k < count; k++) out[k] = { i: from + k, t0 };
  return out;
}

async function produce(side: ProducerSide, request: ChildRequest): Promise<unknown> {
  switch (request.op) {
    case 'enqueueOne': {
      const { n, from } = request;
      const started = preciseNow();
      for (let k = 0; k < n; k++) await side.enqueueOne({ i: from + k, t0: preciseNow() });
      return preciseNow() - started;
    }
    case 'enqueueBulk': {
      const { n, from, batch } = request;
      const started = preciseNow();
      for (let k = 0; k < n; k += batch) await side.enqueueBulk(payloads(from + k, Math.min(batch, n - k)));
      return preciseNow() - started;
    }
    case 'roundTrips': {
      const { warmup, samples } = request;
      for (let k = 0; k < warmup; k++) await side.roundTrip({ i: -1 - k, t0: preciseNow() });
      const done: number[] = [];
      for (let k = 0; k < samples; k++) {
        const t0 = preciseNow();
        await side.roundTrip({ i: k, t0 });
        done.push(preciseNow() - t0);
      }
      return done;
    }
    case 'enqueueDelayed': {
      if (side.enqueueDelayed === undefined) throw new Error('this system has no delayed enqueue in the bench');
      const { n, leadMs, spreadMs, measured } = request;
      const base = Date.now() + leadMs;
      const out: BenchPayload[] = new Array(n);
      // due times spread evenly, enqueued in a scrambled order (k·7919 mod n visits each slot once
      // when n is not a multiple of 7919): a task due before those already waiting comes up often
      for (let k = 0; k < n; k++) {
        const slot = (k * 7919) % n;
        out[k] = { i: measured ? k : -1 - k, t0: base + Math.round((slot * spreadMs) / Math.max(1, n - 1)) };
      }
      await side.enqueueDelayed(out);
      return base + spreadMs;
    }
    default:
      throw new Error(`a producer cannot ${request.op}`);
  }
}

async function work(side: WorkerSide, request: ChildRequest): Promise<unknown> {
  switch (request.op) {
    case 'drain':
      return side.drain(request.n, request.concurrency);
    case 'serve':
      startRecorder.begin();
      await side.serve(request.concurrency);
      return null;
    case 'stopServing':
      await side.stopServing();
      return startRecorder.end();
    case 'startedCount':
      return startRecorder.count();
    default:
      throw new Error(`a worker cannot ${request.op}`);
  }
}

async function main(): Promise<void> {
  const [role, system] = process.argv.slice(2) as [Role, SystemId];
  const servers = JSON.parse(process.env.BENCH_CHILD_SERVERS ?? '{}') as Servers;
  const send = (reply: ChildReply): void => void process.send?.(reply);
  let side: ProducerSide | WorkerSide;
  try {
    side = role === 'producer' ? await openProducer(system, servers) : await openWorker(system, servers);
  } catch (error) {
    send({ id: 0, ok: false, error: `${role} ${system} failed to start: ${(error as Error).stack ?? error}` });
    process.exit(1);
  }
  send({ id: 0, ok: true, value: null });
  process.on('message', (request: ChildRequest) => {
    void (async () => {
      try {
        if (request.op === 'close') {
          await side.close();
          send({ id: request.id, ok: true, value: null });
          process.disconnect?.();
          setTimeout(() => process.exit(0), 200).unref();
          return;
        }
        const value = role === 'producer' ? await produce(side as ProducerSide, request) : await work(side as WorkerSide, request);
        send({ id: request.id, ok: true, value });
      } catch (error) {
        send({ id: request.id, ok: false, error: (error as Error).stack ?? String(error) });
      }
    })();
  });
}

void main();
