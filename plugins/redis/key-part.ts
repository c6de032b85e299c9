/**
 * How a name becomes part of a Redis key. Keys are `:`-joined and a queue's keys share the hash tag
 * `{<namespace>:<queue>}`; a name that holds a separator must not be able to pass for another
 * split (namespace `billing` + queue `eu:emails` against namespace `billing:eu` + queue `emails`).
 * So each name is percent-encoded where a separator would be ambiguous, and only there: a plain
 * name (letters, digits, `-`, `_`, `.`) is left as it is, so existing keys do not move.
 */

const ESCAPES: Readonly<Record<string, string>> = { '%': '%25', ':': '%3A', '{': '%7B', '}': '%7D' };
const PREFIX_SPECIAL = /[%:{}]/;
const PREFIX_SPECIALS = /[%:{}]/g;
const TAG_SPECIAL = /[%{}]/;
const TAG_SPECIALS = /[%{}]/g;

/**
 * A namespace as the first part of every key: `%`, `:`, `{` and `}` percent-encoded, so the first
 * `:` of a key always ends the namespace, and a key can never open a hash tag by accident.
 */
export function keyPrefix(namespace: string): string {
  return PREFIX_SPECIAL.test(namespace) ? namespace.replace(PREFIX_SPECIALS, (c) => ESCAPES[c]!) : namespace;
}

/**
 * A name as the last part of a hash tag (`{<prefix>:<name>}`): `%`, `{` and `}` percent-encoded, so
 * the first `}` always closes the tag (one Cluster slot per queue, and no name can pose as a key
 * suffix). `:` stays: after an encoded prefix it cannot shift the split, and keeping it leaves the
 * keys of queues like `eu:emails` and of every `broadcast://` channel where they were.
 */
export function tagPart(name: string): string {
  return TAG_SPECIAL.test(name) ? name.replace(TAG_SPECIALS, (c) => ESCAPES[c]!) : name;
}
