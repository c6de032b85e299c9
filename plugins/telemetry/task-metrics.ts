import type {
  Attributes,
  Counter,
  Histogram,
  Meter,
  ObservableCallback,
  ObservableGauge,
  ObservableUpDownCounter,
} from '@opentelemetry/api';
import type { Broker } from '../../sdk/contracts/broker.js';
import type { Envelope } from '../../sdk/envelope.js';
import type { Outcome } from '../../sdk/hooks.js';
import type { WorkerHandle } from '../../sdk/worker-handle.js';
import { ATTR, MESSAGING_SYSTEM } from './messaging-attributes.js';
import { consumerGroupOf } from './task-tracer.js';

/** Bucket boundaries (seconds) the messaging conventions advise for duration histograms. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Attribute sets by two keys (destination, task name), made once: a steady workload allocates none per task. */
class AttributeSets {
  private readonly sets = new Map<string, Map<string, Attributes>>();

  find(first: string, second: string): Attributes | undefined {
    return this.sets.get(first)?.get(second);
  }

  keep(first: string, second: string, attributes: Attributes): Attributes {
    let bySecond = this.sets.get(first);
    if (bySecond === undefined) {
      bySecond = new Map();
      this.sets.set(first, bySecond);
    }
    bySecond.set(second, attributes);
    return attributes;
  }
}

/**
 * Stem's metrics through an OpenTelemetry meter: messages sent and consumed, processing
 * duration, retries and dead letters (counted in the enqueue and result phases), and two
 * observed ones, the depth of every queue a worker of this process consumes and its tasks in flight.
 */
export class TaskMetrics {
  private readonly sentMessages: Counter;
  private readonly consumedMessages: Counter;
  private readonly processDuration: Histogram;
  private readonly retried: Counter;
  private readonly deadLettered: Counter;
  private readonly queueDepth: ObservableGauge;
  private readonly inflight: ObservableUpDownCounter;
  private readonly workers = new Set<WorkerHandle>();
  private readonly sendAttributes = new AttributeSets();
  private readonly processAttributes = new AttributeSets();
  private readonly observeDepth: ObservableCallback = async (result) => {
    const queues = new Set<string>();
    for (const worker of this.workers) for (const queue of worker.queues) queues.add(queue);
    const broker = this.broker();
    await Promise.all(
      [...queues].map(async (queue) => {
        try {
          result.observe(await broker.pending(queue), { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.destination]: queue });
        } catch {
          // A broker that cannot answer now reports no depth this round rather than a wrong one.
        }
      }),
    );
  };
  private readonly observeInflight: ObservableCallback = (result) => {
    for (const worker of this.workers) {
      result.observe(worker.runningCount(), { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.workerId]: worker.id });
    }
  };

  constructor(
    meter: Meter,
    private readonly broker: () => Broker,
  ) {
    this.sentMessages = meter.createCounter('messaging.client.sent.messages', {
      unit: '{message}',
      description: 'Messages a producer published',
    });
    this.consumedMessages = meter.createCounter('messaging.client.consumed.messages', {
      unit: '{message}',
      description: 'Messages a worker consumed to an outcome (succeeded, failed, retried, cancelled)',
    });
    this.processDuration = meter.createHistogram('messaging.process.duration', {
      unit: 's',
      description: 'How long a task handler ran',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
    this.retried = meter.createCounter('stem.tasks.retried', {
      unit: '{task}',
      description: 'Failed attempts that were queued again for another attempt',
    });
    this.deadLettered = meter.createCounter('stem.tasks.dead_lettered', { unit: '{task}', description: 'Tasks set aside as dead letters' });
    this.queueDepth = meter.createObservableGauge('stem.queue.depth', {
      unit: '{message}',
      description: 'Messages waiting (ready or delayed) in a queue a worker of this process consumes',
    });
    this.inflight = meter.createObservableUpDownCounter('stem.worker.inflight', { unit: '{task}', description: 'Tasks a worker runs now' });
    this.queueDepth.addCallback(this.observeDepth);
    this.inflight.addCallback(this.observeInflight);
  }

  /** Counts envelopes the broker accepted. */
  sent(envelopes: readonly Envelope[]): void {
    for (const envelope of envelopes) {
      const { queue, name } = envelope;
      const attributes =
        this.sendAttributes.find(queue, name) ??
        this.sendAttributes.keep(queue, name, {
          [ATTR.system]: MESSAGING_SYSTEM,
          [ATTR.destination]: queue,
          [ATTR.operationName]: 'send',
          [ATTR.taskName]: name,
        });
      this.sentMessages.add(1, attributes);
    }
  }

  /** Counts a consumed message and its duration, retry or dead letter. */
  concluded(outcome: Outcome): void {
    let attributes = this.processAttributesOf(outcome.delivery.queue, outcome.worker.id, outcome.envelope.name);
    if ((outcome.state === 'failed' || outcome.state === 'retried') && outcome.error !== undefined) {
      attributes = { ...attributes, [ATTR.errorType]: outcome.error.type };
    }
    this.consumedMessages.add(1, attributes);
    if (outcome.startedAt !== 0) this.processDuration.record(outcome.durationMs / 1000, attributes);
    if (outcome.state === 'retried') this.retried.add(1, attributes);
    else if (outcome.state === 'failed') this.deadLettered.add(1, attributes);
  }

  /** Starts observing a worker's queues and tasks in flight. */
  workerStarted(worker: WorkerHandle): void {
    this.workers.add(worker);
  }

  /** Stops observing a worker. */
  workerStopped(worker: WorkerHandle): void {
    this.workers.delete(worker);
  }

  private processAttributesOf(queue: string, workerId: string, name: string): Attributes {
    const group = consumerGroupOf(queue, workerId);
    // A queue's consumer group is the queue itself; only a broadcast's (the worker) needs its own key.
    const key = group === queue ? queue : `${queue}\u0000${group}`;
    return (
      this.processAttributes.find(key, name) ??
      this.processAttributes.keep(key, name, {
        [ATTR.system]: MESSAGING_SYSTEM,
        [ATTR.destination]: queue,
        [ATTR.operationName]: 'process',
        [ATTR.consumerGroup]: group,
        [ATTR.taskName]: name,
      })
    );
  }

  /** Detaches the observers from the meter. */
  close(): void {
    this.queueDepth.removeCallback(this.observeDepth);
    this.inflight.removeCallback(this.observeInflight);
    this.workers.clear();
  }
}
