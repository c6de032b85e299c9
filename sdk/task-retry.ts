import type { Broker } from './contracts/broker.js';
import type { ResultBackend, TaskStatus } from './contracts/result-backend.js';
import { META, type Envelope } from './envelope.js';
import { EnvelopeNotRecordedError, TaskNotRetryableError, UnknownTaskIdError } from './errors.js';
import type { StemSettings } from './settings.js';
import { GENERATION_META, generationOf, startedOver } from './state-order.js';

/** What a retry uses of its Stem instance. */
export interface RetryHost {
  readonly broker: Broker;
  readonly backend: ResultBackend;
  readonly settings: StemSettings;
}

/**
 * Runs a failed or cancelled task again under the same id (BullMQ's `job.retry()`): attempt 0 of
 * the next generation, so its states pass the ones the old run left (sdk/state-order.ts). A task
 * waiting in its queue's dead letters is replayed from there (the broker moves it atomically, so a
 * later `stem dlq replay` cannot run it a second time); any other is published again from the
 * envelope its final state recorded (its delay and expiry dropped: a retry runs now). A task
 * whose state records no envelope (dropped by a full queue, or written by another writer) can
 * still be retried from its dead letter.
 * Returns the envelope published.
 */
export async function retryTask(host: RetryHost, id: string): Promise<Envelope> {
  const status = await host.backend.get(id);
  if (status === null) throw new UnknownTaskIdError(id);
  if (status.state !== 'failed' && status.state !== 'cancelled') throw new TaskNotRetryableError(id, status.state);
  const queue = status.envelope?.queue ?? status.queue;
  const replayed = queue === undefined ? [] : await host.broker.replayDeadLetters(queue, { ids: [id] }).catch(() => []);
  let envelope: Envelope;
  let generation: number;
  if (replayed.length > 0 && replayed[0]!.envelope !== undefined) {
    // The broker started it over (startedOver) from its dead letter's envelope.
    envelope = startedOver(replayed[0]!.envelope, replayed[0]!.queue);
    generation = generationOf(envelope.meta) - 1;
  } else {
    if (status.envelope === undefined) throw new EnvelopeNotRecordedError(id, status.state);
    // The state's generation wins over the envelope's: a writer may have recorded one without the other.
    generation = Math.max(status.generation ?? 0, generationOf(status.envelope.meta));
    const recorded: Envelope = { ...status.envelope, args: status.args, meta: { ...status.envelope.meta, [GENERATION_META]: generation } };
    envelope = startedOver(recorded, recorded.queue);
    delete envelope.notBefore;
    delete envelope.expiresAt;
    await host.broker.publish([envelope]);
  }
  const queued: TaskStatus = {
    id,
    state: 'queued',
    name: envelope.name,
    queue: envelope.queue,
    attempt: 0,
    generation: generation + 1,
    updatedAt: Date.now(),
  };
  if (host.settings.extendedResults) queued.args = envelope.args;
  const ttlMs = (envelope.meta[META.resultTtlMs] as number | undefined) ?? host.settings.resultTtlMs;
  // After the publish, as the producer does: the worker's own states are newer and win either way.
  await host.backend.set([queued], { ttlMs }).catch(() => undefined);
  return envelope;
}
