import type { Delivery } from '../../sdk/contracts/broker.js';
import { parseDuration, type Duration } from '../../sdk/duration.js';
import { ClosedError } from '../../sdk/errors.js';
import { uuidv7 } from '../../sdk/id.js';
import type { Stem } from '../../sdk/kernel.js';
import {
  CONTROL_REQUEST,
  checkNamespace,
  controlEnvelope,
  readReply,
  replyChannel,
  requestChannel,
  type ControlReply,
  type ControlRequest,
} from './control-protocol.js';
import { QueuePauses } from './queue-pauses.js';

/** How a request is sent and how long replies are awaited. */
export interface ControlRequestOptions {
  /** Only these workers (ids or host names) act and reply; every worker when absent. */
  destination?: readonly string[];
  /** How long replies are collected (default 1s); with a destination of ids, it ends early once each replied. */
  timeout?: Duration;
}

const DEFAULT_TIMEOUT_MS = 1_000;

/**
 * Sends control requests to live workers and collects their replies: subscribes to the reply
 * channel first (so no reply is missed), publishes the request to `broadcast://<namespace>.control`,
 * then gathers replies until the timeout. Workers that died simply do not answer.
 *
 * @example const replies = await new ControlClient(stem).request('ping');
 */
export class ControlClient {
  /** The control namespace requests go to. */
  readonly namespace: string;

  constructor(
    private readonly stem: Stem,
    options: { namespace?: string } = {},
  ) {
    this.namespace = checkNamespace(options.namespace ?? stem.settings.namespace, 'ControlClient');
  }

  /** Sends `command` and returns the replies gathered before the timeout, in arrival order. */
  async request(command: string, args: Record<string, unknown> = {}, options: ControlRequestOptions = {}): Promise<ControlReply[]> {
    const timeoutMs = parseDuration(options.timeout ?? DEFAULT_TIMEOUT_MS, 'timeout');
    const requestId = uuidv7();
    const broker = this.stem.broker;
    const consumer = await broker.consumer({
      queues: [],
      broadcasts: [replyChannel(this.namespace)],
      consumerId: `control-client-${requestId}`,
    });
    const replies: ControlReply[] = [];
    const awaited = options.destination === undefined ? undefined : new Set(options.destination);
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    try {
      const request: ControlRequest = { requestId, command, args };
      if (options.destination !== undefined) request.destination = [...options.destination];
      await broker.publish([controlEnvelope(requestChannel(this.namespace), CONTROL_REQUEST, request, timeoutMs)]);
      while (!deadline.signal.aborted) {
        const deliveries: Delivery[] = await consumer.fetch(64, deadline.signal).catch((error: unknown) => {
          // The Stem closed under the request (its consumer with it): what was collected is the answer.
          if (error instanceof ClosedError) deadline.abort();
          else throw error;
          return [];
        });
        // A consumer that answers nothing at once (a closed one, on some brokers) must not starve the deadline's timer.
        if (deliveries.length === 0) await new Promise((resolve) => setImmediate(resolve));
        if (deliveries.length > 0) await broker.ack(deliveries);
        for (const delivery of deliveries) {
          const reply = readReply(delivery.envelope, requestId);
          if (reply === undefined) continue;
          replies.push(reply);
          awaited?.delete(reply.workerId);
        }
        if (awaited !== undefined && awaited.size === 0) break;
      }
    } finally {
      clearTimeout(timer);
      await consumer.close();
    }
    return replies;
  }

  /**
   * Pauses `queue`. Without a destination the pause is also written to the revoke store, so
   * workers that start later stay off the queue too; with one it lasts until those workers restart.
   */
  async pauseQueue(queue: string, options: ControlRequestOptions = {}): Promise<ControlReply[]> {
    if (options.destination === undefined) await new QueuePauses(this.stem.service('revokeStore'), this.namespace).set(queue, true);
    return this.request('pause', { queue }, options);
  }

  /** Resumes `queue` (and, without a destination, clears its stored pause). */
  async resumeQueue(queue: string, options: ControlRequestOptions = {}): Promise<ControlReply[]> {
    if (options.destination === undefined) await new QueuePauses(this.stem.service('revokeStore'), this.namespace).set(queue, false);
    return this.request('resume', { queue }, options);
  }
}
