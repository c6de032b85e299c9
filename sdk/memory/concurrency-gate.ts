import { concurrencyKeyOf as concurrencyOf } from '../concurrency-key.js';
import type { ConcurrencyKeyStats } from '../contracts/concurrency-control.js';
import type { Envelope } from '../envelope.js';

/** One key of a gate: how many of its messages hold a slot, and the ones waiting for one, oldest first. */
interface KeyState {
  held: number;
  limit: number;
  parked: Array<{ envelope: Envelope; admit: () => void }>;
}

/**
 * Per-key concurrency of one memory queue, by admission: a keyed message enters its queue only
 * while its key holds fewer slots than its limit; the others wait here in enqueue order, so the
 * queue only ever holds runnable messages and no key blocks another. A slot is held from admission
 * to ack, dead letter or drop; a redelivery (lease ran out) or a retry keeps it.
 */
export class ConcurrencyGate {
  private readonly keys = new Map<string, KeyState>();
  private readonly overrides = new Map<string, number>();

  /** Admits (calls `admit` now) or parks a keyed message; returns false for an unkeyed one (the caller enqueues it). */
  offer(envelope: Envelope, admit: () => void): boolean {
    const keyed = concurrencyOf(envelope);
    if (keyed === undefined) return false;
    const state = this.stateOf(keyed.key);
    state.limit = keyed.limit;
    if (state.parked.length === 0 && state.held < this.limitOf(keyed.key, state)) {
      state.held++;
      admit();
    } else {
      state.parked.push({ envelope, admit });
    }
    return true;
  }

  /** Gives back the slot of a keyed message that is gone (acked, dead-lettered, dropped) and admits the next ones. */
  release(envelope: Envelope): void {
    const keyed = concurrencyOf(envelope);
    if (keyed === undefined) return;
    const state = this.keys.get(keyed.key);
    if (state === undefined) return;
    state.held = Math.max(0, state.held - 1);
    this.admitWaiting(keyed.key, state);
  }

  /** Sets or clears a key's run-time limit; a higher one admits waiting messages at once. */
  setLimit(key: string, limit: number | null): void {
    if (limit === null) this.overrides.delete(key);
    else this.overrides.set(key, limit);
    const state = this.keys.get(key);
    if (state !== undefined) this.admitWaiting(key, state);
  }

  /** Messages waiting for a slot, all keys together. */
  get waitingCount(): number {
    let waiting = 0;
    for (const state of this.keys.values()) waiting += state.parked.length;
    return waiting;
  }

  /** Drops the waiting messages (a purge); returns how many. */
  purge(): number {
    let purged = 0;
    for (const state of this.keys.values()) {
      purged += state.parked.length;
      state.parked = [];
    }
    return purged;
  }

  /** Each key with slots held, messages waiting or an override. */
  stats(): ConcurrencyKeyStats[] {
    const out: ConcurrencyKeyStats[] = [];
    const names = new Set([...this.keys.keys(), ...this.overrides.keys()]);
    for (const key of [...names].sort()) {
      const state = this.keys.get(key);
      out.push({ key, running: state?.held ?? 0, waiting: state?.parked.length ?? 0, limit: this.overrides.get(key) ?? state?.limit ?? 1 });
    }
    return out;
  }

  private stateOf(key: string): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) this.keys.set(key, (state = { held: 0, limit: 1, parked: [] }));
    return state;
  }

  private limitOf(key: string, state: KeyState): number {
    return this.overrides.get(key) ?? state.limit;
  }

  private admitWaiting(key: string, state: KeyState): void {
    while (state.parked.length > 0 && state.held < this.limitOf(key, state)) {
      state.held++;
      state.parked.shift()!.admit();
    }
    if (state.held === 0 && state.parked.length === 0) this.keys.delete(key);
  }
}
