// BullMQ's sandboxed processor for bench/isolation.ts: a no-op, as Stem's bench.noop.
module.exports = async () => 1;
