import type { BrokerConsumer, Delivery } from '../../sdk/contracts/broker.js';
import { UsageError } from '../../sdk/errors.js';
import type { Stem } from '../../sdk/kernel.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';
import {
  CONTROL_REPLY,
  controlEnvelope,
  readRequest,
  replyChannel,
  requestChannel,
  type ControlReply,
  type ControlRequest,
} from './control-protocol.js';
import type { QueuePauses } from './queue-pauses.js';

/** Replies are useless once the asking client has stopped listening; they expire after this. */
const REPLY_TTL_MS = 60_000;
const FETCH_RETRY_MS = 500;
const BATCH = 16;

/** The commands every worker with the control plugin answers itself. */
export const BUILTIN_COMMANDS = ['ping', 'stats', 'inspect', 'pause', 'resume', 'shutdown'] as const;

/**
 * One worker's remote-control endpoint: an extra broker consumer on `broadcast://<namespace>.control`
 * (consumer id `<worker id>:control`) that answers requests addressed to this worker, outside the
 * task path: control envelopes never reach the dispatch hook or a handler. Requests are acked before
 * they are acted on, so a redelivery never runs a shutdown twice.
 */
export class WorkerControl {
  private consumer: BrokerConsumer | undefined;
  private readonly abort = new AbortController();
  private loopDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly stem: Stem,
    private readonly worker: WorkerHandle,
    private readonly namespace: string,
    private readonly pauses: QueuePauses,
  ) {}

  /** Applies the persisted queue pauses, subscribes, and starts answering. */
  async start(): Promise<void> {
    try {
      for (const queue of await this.pauses.paused()) this.worker.pauseQueue(queue);
    } catch (error) {
      this.warn(`could not read the paused queues (${(error as Error).message}); consuming every queue`);
    }
    this.consumer = await this.stem.broker.consumer({
      queues: [],
      broadcasts: [requestChannel(this.namespace)],
      consumerId: `${this.worker.id}:control`,
    });
    this.loopDone = this.loop(this.consumer);
  }

  /** Stops answering and closes the subscription. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loopDone;
    await this.consumer?.close().catch(() => undefined);
  }

  private async loop(consumer: BrokerConsumer): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let deliveries: Delivery[];
      try {
        deliveries = await consumer.fetch(BATCH, signal);
        if (deliveries.length > 0) await this.stem.broker.ack(deliveries);
      } catch (error) {
        if (signal.aborted) break;
        this.warn(`control fetch failed (${(error as Error).message}); retrying`);
        await new Promise((resolve) => setTimeout(resolve, FETCH_RETRY_MS));
        continue;
      }
      for (const delivery of deliveries) {
        const request = readRequest(delivery.envelope, Date.now());
        if (request !== undefined && this.addressedToMe(request)) await this.handle(request);
      }
    }
  }

  private addressedToMe(request: ControlRequest): boolean {
    return (
      request.destination === undefined ||
      request.destination.includes(this.worker.id) ||
      request.destination.includes(this.worker.hostname)
    );
  }

  private async handle(request: ControlRequest): Promise<void> {
    const reply: ControlReply = {
      requestId: request.requestId,
      workerId: this.worker.id,
      hostname: this.worker.hostname,
      pid: process.pid,
      ok: true,
    };
    try {
      reply.reply = await this.answer(request);
    } catch (error) {
      reply.ok = false;
      reply.error = (error as Error).message;
    }
    try {
      await this.stem.broker.publish([controlEnvelope(replyChannel(this.namespace), CONTROL_REPLY, reply, REPLY_TTL_MS)]);
    } catch (error) {
      this.warn(`could not reply to ${request.command} (${(error as Error).message})`);
    }
    if (request.command === 'shutdown' && reply.ok) {
      // Not awaited: the stop waits for this loop to end (workerStop), so awaiting it here would deadlock.
      void this.worker.stop(request.args.mode === 'hard' ? { graceMs: 0 } : {});
    }
  }

  private async answer(request: ControlRequest): Promise<unknown> {
    const worker = this.worker;
    switch (request.command) {
      case 'ping':
        return {
          workerId: worker.id,
          hostname: worker.hostname,
          pid: process.pid,
          queues: worker.queues,
          pausedQueues: worker.pausedQueues(),
          state: worker.state,
          uptimeMs: worker.stats().uptimeMs,
        };
      case 'stats': {
        const memory = process.memoryUsage();
        return {
          ...worker.stats(),
          pausedQueues: worker.pausedQueues(),
          autoscaler: worker.autoscaler?.state() ?? null,
          memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
          runningKeys: worker.runningKeys?.() ?? [],
        };
      }
      case 'inspect': {
        const now = Date.now();
        return {
          active: worker.activeTasks().map((task) => ({ ...task, runtimeMs: now - task.startedAt })),
          reserved: worker.reservedTasks(),
        };
      }
      case 'pause':
      case 'resume': {
        const queue = request.args.queue;
        if (typeof queue !== 'string' || queue === '') throw new UsageError(`${request.command}: args.queue must be a queue name`);
        const consuming = request.command === 'pause' ? worker.pauseQueue(queue) : worker.resumeQueue(queue);
        return { queue, consuming, paused: worker.pausedQueues().includes(queue) };
      }
      case 'shutdown': {
        const mode = request.args.mode ?? 'warm';
        if (mode !== 'warm' && mode !== 'hard') throw new UsageError(`shutdown: mode ${JSON.stringify(mode)} must be warm or hard`);
        return { mode, inflight: worker.runningCount() };
      }
      default: {
        const hooks = this.stem.hooks;
        const answer = hooks.control.isUsed()
          ? await hooks.control.promise({ name: request.command, args: request.args, requestId: request.requestId }, worker)
          : undefined;
        if (answer === undefined)
          throw new UsageError(
            `unknown control command "${request.command}": nothing on worker ${worker.id} handles it (is its plugin configured?)`,
          );
        return answer;
      }
    }
  }

  private warn(message: string): void {
    process.emitWarning(`worker ${this.worker.id}: ${message}`, 'StemControlWarning');
  }
}
