/**
 * Attribute keys of the OpenTelemetry messaging semantic conventions that Stem's spans and
 * metrics carry, plus Stem's own `stem.*` keys. Literal strings rather than the
 * @opentelemetry/semantic-conventions package: the plugin depends on @opentelemetry/api only.
 */
export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  consumerGroup: 'messaging.consumer.group.name',
  clientId: 'messaging.client.id',
  errorType: 'error.type',
  taskName: 'stem.task.name',
  taskAttempt: 'stem.task.attempt',
  retryDelayMs: 'stem.retry.delay_ms',
  retryNextAttempt: 'stem.retry.next_attempt',
  deadLetterReason: 'stem.dead_letter.reason',
  cancelReason: 'stem.cancel.reason',
  workerId: 'stem.worker.id',
} as const;

/** The `messaging.system` value of every Stem span and metric. */
export const MESSAGING_SYSTEM = 'stem';

/** Span event names: what happened to an attempt after its handler settled. */
export const SPAN_EVENT = {
  retry: 'stem.retry',
  deadLetter: 'stem.dead_letter',
  cancel: 'stem.cancel',
  returnedToQueue: 'stem.returned_to_queue',
} as const;

/**
 * Per-destination values made once and reused (span names and metric attribute sets), so a
 * steady workload allocates none of them per task.
 */
export class DestinationCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly make: (key: string) => T) {}

  /** The value for `key`, made on first use. */
  get(key: string): T {
    let value = this.entries.get(key);
    if (value === undefined) {
      value = this.make(key);
      this.entries.set(key, value);
    }
    return value;
  }
}
