import { readFileSync } from 'node:fs';
import { extname, isAbsolute, relative } from 'node:path';
import { Document, LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { ConfigError } from '../../sdk/errors.js';
import { BROADCAST_PREFIX } from '../../sdk/envelope.js';
import { checkQueueBound, OVERFLOW_POLICIES, type QueueBound } from '../../sdk/queue-bound.js';
import type {
  BroadcastDeclaration,
  DefaultQueueDeclaration,
  LocatedGlob,
  PriorityRange,
  QueueDeclaration,
  RouteRule,
  RouteTarget,
  RoutingConfig,
} from './routing-config.js';
import { RoutingSource } from './routing-source.js';
import { GlobIndex } from './glob-index.js';
import { TaskGlob } from './task-glob.js';

const TOP_LEVEL_KEYS = ['default_queue', 'queues', 'broadcasts', 'routes'];
const QUEUE_KEYS = ['routing_key', 'priority_range', 'max_length', 'overflow'];
const DEFAULT_QUEUE_KEYS = ['queue', 'alias', 'fallbacks'];
const BROADCAST_KEYS = ['delivery'];
const ROUTE_KEYS = ['match', 'queue', 'broadcast', 'priority', 'force'];
const MATCH_KEYS = ['task', 'headers'];
const RANGE_KEYS = ['min', 'max'];
const IMPLICIT_ALIAS = 'default';
const ANY_TASK = new TaskGlob('*');

function headerKey(name: string, value: string): string {
  return JSON.stringify([name, value]);
}

/** One key of a mapping, with its nodes for positions. */
interface Entry {
  key: string;
  keyNode: Node;
  /** The value, or undefined when the key has none (`reports:`). */
  value: Node | undefined;
  path: string;
}

function isEmpty(node: Node | null | undefined): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function listOf(keys: readonly string[]): string {
  return keys.length <= 1 ? keys.join('') : `${keys.slice(0, -1).join(', ')} and ${keys[keys.length - 1]}`;
}

function kindOf(node: Node): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'nothing' : JSON.stringify(node.value);
  return 'something else';
}

/** Reads a parsed YAML/JSON tree into a RoutingConfig, throwing one ConfigError at the first fault. */
class RoutingConfigReader {
  private readonly declaredQueues = new Map<string, Node | undefined>();
  private readonly aliases = new Map<string, string>();
  private readonly broadcastNames = new Set<string>();
  /** The task globs of the routes read so far, for the reachability check. */
  private readonly routeGlobs = new GlobIndex<RouteRule>();
  /** The routes read so far that match by headers alone, by one of their headers ('' for none). */
  private readonly anyTaskRoutes = new Map<string, RouteRule[]>();

  constructor(private readonly source: RoutingSource) {}

  read(root: Node | null): RoutingConfig {
    if (isEmpty(root)) {
      throw new ConfigError(
        `${this.source.name}: the routing config is empty; declare at least default_queue or queues (see docs/routing.md)`,
      );
    }
    if (!isMap(root)) {
      throw new ConfigError(
        `${this.source.where(root)}: the routing config must be a mapping of ${listOf(TOP_LEVEL_KEYS)}, not ${kindOf(root!)}`,
      );
    }
    const sections = new Map(this.entries(root, '', TOP_LEVEL_KEYS, 'the top-level keys are').map((entry) => [entry.key, entry]));
    const queues = this.readQueues(sections.get('queues'));
    const broadcasts = this.readBroadcasts(sections.get('broadcasts'));
    const defaultQueue = this.readDefaultQueue(sections.get('default_queue'));
    const routes = this.readRoutes(sections.get('routes'));
    this.checkRoutingKeysReachable(queues);
    return { source: this.source.name, defaultQueue, queues, broadcasts, routes };
  }

  // Sections

  private readQueues(entry: Entry | undefined): QueueDeclaration[] {
    if (entry === undefined || isEmpty(entry.value)) return [];
    const queues: QueueDeclaration[] = [];
    for (const queue of this.entries(this.mapping(entry), entry.path, undefined, '', 'queue')) {
      const name = this.name(queue.key, queue.keyNode, queue.path, 'a queue name');
      let routingKeys: LocatedGlob[] = [];
      let priorityRange: PriorityRange | undefined;
      let maxLength: Entry | undefined;
      let overflow: Entry | undefined;
      if (!isEmpty(queue.value)) {
        for (const field of this.entries(this.mapping(queue), queue.path, QUEUE_KEYS, 'a queue takes')) {
          if (field.key === 'routing_key') routingKeys = this.globs(field);
          else if (field.key === 'max_length') maxLength = field;
          else if (field.key === 'overflow') overflow = field;
          else priorityRange = this.priorityRange(field);
        }
      }
      this.declaredQueues.set(name, queue.keyNode);
      queues.push({ name, routingKeys, priorityRange, bound: this.queueBound(queue, maxLength, overflow) });
    }
    return queues;
  }

  private readBroadcasts(entry: Entry | undefined): BroadcastDeclaration[] {
    if (entry === undefined || isEmpty(entry.value)) return [];
    const broadcasts: BroadcastDeclaration[] = [];
    for (const channel of this.entries(this.mapping(entry), entry.path, undefined, '', 'broadcast')) {
      const name = this.name(channel.key, channel.keyNode, channel.path, 'a broadcast name');
      if (!isEmpty(channel.value)) {
        for (const field of this.entries(this.mapping(channel), channel.path, BROADCAST_KEYS, 'a broadcast takes')) {
          const delivery = this.string(field);
          if (delivery !== 'fanout') {
            throw this.source.error(
              field.value,
              field.path,
              `${JSON.stringify(delivery)} is not a delivery; the only one is fanout (each subscribed worker runs the task once)`,
            );
          }
        }
      }
      this.broadcastNames.add(name);
      broadcasts.push({ name, delivery: 'fanout' });
    }
    return broadcasts;
  }

  private readDefaultQueue(entry: Entry | undefined): DefaultQueueDeclaration | undefined {
    if (entry === undefined) return undefined;
    let queue: string | undefined;
    let alias: string | undefined;
    let aliasNode: Node | undefined;
    const fallbacks: string[] = [];
    if (isMap(entry.value)) {
      for (const field of this.entries(entry.value, entry.path, DEFAULT_QUEUE_KEYS, 'default_queue takes')) {
        if (field.key === 'queue') queue = this.name(this.string(field), field.value, field.path, 'a queue name');
        else if (field.key === 'alias') {
          alias = this.name(this.string(field), field.value, field.path, 'an alias');
          aliasNode = field.value;
        } else {
          for (const [name, node] of this.strings(field)) fallbacks.push(this.name(name, node, field.path, 'a queue name'));
        }
      }
      if (queue === undefined)
        throw this.source.error(
          entry.value,
          entry.path,
          'give the queue: default_queue: { queue: critical, alias: default, fallbacks: [] }',
        );
    } else {
      queue = this.name(this.string(entry), entry.value, entry.path, 'a queue name');
    }
    if (alias !== undefined && alias !== queue && this.declaredQueues.has(alias)) {
      throw this.source.error(
        aliasNode,
        `${entry.path}.alias`,
        `"${alias}" is also a declared queue; an alias must be a name no queue has`,
      );
    }
    if (alias === undefined && queue !== IMPLICIT_ALIAS && !this.declaredQueues.has(IMPLICIT_ALIAS)) alias = IMPLICIT_ALIAS;
    if (alias === queue) alias = undefined;
    for (const name of [queue, ...fallbacks]) if (!this.declaredQueues.has(name)) this.declaredQueues.set(name, undefined);
    if (alias !== undefined) this.aliases.set(alias, queue);
    return { queue, alias, fallbacks: fallbacks.filter((name, i) => name !== queue && fallbacks.indexOf(name) === i) };
  }

  private readRoutes(entry: Entry | undefined): RouteRule[] {
    if (entry === undefined || isEmpty(entry.value)) return [];
    if (!isSeq(entry.value))
      throw this.source.error(entry.value, entry.path, `must be a list of routes (- match: …), not ${kindOf(entry.value!)}`);
    const routes: RouteRule[] = [];
    entry.value.items.forEach((item, index) => {
      const path = `routes[${index}]`;
      const node = item as Node;
      if (!isMap(node)) throw this.source.error(node, path, `must be a mapping with match and queue or broadcast, not ${kindOf(node)}`);
      const route = this.readRoute(node, path, index);
      this.checkRouteReachable(route, node);
      routes.push(route);
    });
    return routes;
  }

  private readRoute(node: Node, path: string, index: number): RouteRule {
    let tasks: LocatedGlob[] = [];
    let headers: Record<string, string> = {};
    let target: RouteTarget | undefined;
    let priority: number | undefined;
    let force = false;
    let sawMatch = false;
    for (const field of this.entries(node, path, ROUTE_KEYS, 'a route takes')) {
      switch (field.key) {
        case 'match':
          sawMatch = true;
          ({ tasks, headers } = this.readMatch(field));
          break;
        case 'queue':
        case 'broadcast': {
          if (target !== undefined) throw this.source.error(field.keyNode, field.path, 'a route goes to a queue or a broadcast, not both');
          target =
            field.key === 'queue'
              ? { kind: 'queue', name: this.declaredQueue(field) }
              : { kind: 'broadcast', name: this.declaredBroadcast(field) };
          break;
        }
        case 'priority':
          priority = this.priority(field.value, field.path);
          break;
        default:
          force = this.boolean(field);
      }
    }
    if (!sawMatch) throw this.source.error(node, path, 'give a match: { task: "reports.*", headers: { tenant: acme } }');
    if (target === undefined) throw this.source.error(node, path, 'give where it goes: queue: <name> or broadcast: <name>');
    return { index, tasks, headers, target, priority, force };
  }

  private readMatch(entry: Entry): { tasks: LocatedGlob[]; headers: Record<string, string> } {
    let tasks: LocatedGlob[] = [];
    const headers: Record<string, string> = {};
    for (const field of this.entries(this.mapping(entry), entry.path, MATCH_KEYS, 'match takes')) {
      if (field.key === 'task') tasks = this.globs(field);
      else {
        for (const header of this.entries(this.mapping(field), field.path, undefined, '', 'header')) {
          const value = header.value;
          if (!isScalar(value) || value.value === null || typeof value.value === 'object') {
            throw this.source.error(value ?? header.keyNode, header.path, 'a header value must be a string, number or boolean');
          }
          headers[header.key] = String(value.value);
        }
      }
    }
    if (tasks.length === 0 && Object.keys(headers).length === 0) {
      throw this.source.error(
        entry.value,
        entry.path,
        'give task, headers or both: match: { task: "reports.*", headers: { tenant: acme } }',
      );
    }
    return { tasks, headers };
  }

  // "A glob that matches nothing": a rule placed after one that takes every task it would take.

  private checkRoutingKeysReachable(queues: readonly QueueDeclaration[]): void {
    const earlier = new GlobIndex<LocatedGlob & { queue: string }>();
    for (const queue of queues) {
      for (const key of queue.routingKeys) {
        const shadow = earlier.coverersOf(key.glob).find((before) => before.queue !== queue.name);
        if (shadow !== undefined) {
          throw new ConfigError(
            `${key.where}: ${key.key}: "${key.glob}" can never match: ${shadow.key} "${shadow.glob}" (${shadow.where}) takes ` +
              `every task it matches first; remove it or declare queue ${queue.name} above ${shadow.queue}`,
          );
        }
      }
      for (const key of queue.routingKeys) earlier.add(key.glob, { ...key, queue: queue.name });
    }
  }

  /**
   * Throws when an earlier route takes every task `route` matches. The earlier routes that could
   * are looked up (by glob, or for routes without task globs by one of their headers) instead of
   * compared one by one, so that a file of thousands of routes is checked in linear time.
   */
  private checkRouteReachable(route: RouteRule, node: Node): void {
    const globs = route.tasks.length > 0 ? route.tasks.map((task) => task.glob) : [ANY_TASK];
    const candidates = new Set<RouteRule>(this.routeGlobs.coverersOf(globs[0]!));
    for (const rule of this.anyTaskRoutes.get('') ?? []) candidates.add(rule);
    for (const [name, value] of Object.entries(route.headers))
      for (const rule of this.anyTaskRoutes.get(headerKey(name, value)) ?? []) candidates.add(rule);
    let shadow: RouteRule | undefined;
    for (const earlier of candidates) {
      if (shadow !== undefined && shadow.index < earlier.index) continue;
      const covers =
        (earlier.force || !route.force) &&
        Object.entries(earlier.headers).every(([name, value]) => route.headers[name] === value) &&
        (earlier.tasks.length === 0 || globs.every((glob) => earlier.tasks.some((outer) => outer.glob.covers(glob))));
      if (covers) shadow = earlier;
    }
    if (shadow !== undefined) {
      throw this.source.error(
        node,
        `routes[${route.index}]`,
        `can never match: routes[${shadow.index}] takes every task it matches first; put the narrower route before the wider one`,
      );
    }
    if (route.tasks.length > 0) for (const task of route.tasks) this.routeGlobs.add(task.glob, route);
    else {
      // Filed under one of its headers: only a route with that same header can be shadowed by it.
      const first = Object.entries(route.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))[0];
      const key = first === undefined ? '' : headerKey(first[0], first[1]);
      const bucket = this.anyTaskRoutes.get(key);
      if (bucket === undefined) this.anyTaskRoutes.set(key, [route]);
      else bucket.push(route);
    }
  }

  // Values

  /** The entries of a mapping: keys are scalars, unique, and (when `allowed` is given) known. */
  private entries(map: Node, path: string, allowed: readonly string[] | undefined, allowedLabel: string, what = 'key'): Entry[] {
    if (!isMap(map)) throw this.source.error(map, path || '(top level)', `must be a mapping, not ${kindOf(map)}`);
    const seen = new Map<string, Node>();
    const entries: Entry[] = [];
    for (const pair of map.items) {
      const keyNode = pair.key as Node;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        throw this.source.error(keyNode, path || '(top level)', `a ${what} must be a plain name`);
      }
      const key = String(keyNode.value);
      const keyPath = path === '' ? key : `${path}.${key}`;
      const first = seen.get(key);
      if (first !== undefined) {
        const line = this.source.line(first);
        const at = line === undefined ? '' : ` (first at line ${line})`;
        throw this.source.error(keyNode, keyPath, `the ${what} "${key}" is declared twice${at}; declare each ${what} once`);
      }
      seen.set(key, keyNode);
      if (allowed !== undefined && !allowed.includes(key)) {
        throw this.source.error(keyNode, keyPath, `unknown key; ${allowedLabel} ${listOf(allowed)}`);
      }
      const value = isEmpty(pair.value as Node) && !isScalar(pair.value) ? undefined : (pair.value as Node);
      entries.push({ key, keyNode, value, path: keyPath });
    }
    return entries;
  }

  private mapping(entry: Entry): Node {
    if (entry.value === undefined || !isMap(entry.value)) {
      throw this.source.error(
        entry.value ?? entry.keyNode,
        entry.path,
        `must be a mapping, not ${entry.value === undefined ? 'nothing' : kindOf(entry.value)}`,
      );
    }
    return entry.value;
  }

  private string(entry: Entry): string {
    const node = entry.value;
    if (!isScalar(node) || typeof node.value !== 'string' || node.value.trim() === '') {
      throw this.source.error(node ?? entry.keyNode, entry.path, `must be a name, not ${node === undefined ? 'nothing' : kindOf(node)}`);
    }
    return node.value;
  }

  /** A string or a list of strings, each with its node. */
  private strings(entry: Entry): Array<[string, Node]> {
    const node = entry.value;
    const items = isSeq(node) ? (node.items as Node[]) : [node];
    const values: Array<[string, Node]> = [];
    for (const item of items) {
      if (!isScalar(item) || typeof item.value !== 'string' || item.value.trim() === '') {
        throw this.source.error(
          item ?? entry.keyNode,
          entry.path,
          `must be a name or a list of names, not ${item === undefined ? 'nothing' : kindOf(item)}`,
        );
      }
      values.push([item.value, item]);
    }
    if (values.length === 0) throw this.source.error(node, entry.path, 'give at least one name');
    return values;
  }

  private globs(entry: Entry): LocatedGlob[] {
    return this.strings(entry).map(([source, node]) => {
      if (/\s/.test(source))
        throw this.source.error(node, entry.path, `"${source}" contains a space; a task glob is a task name with * and ? wildcards`);
      return { glob: new TaskGlob(source), key: entry.path, where: this.source.where(node) };
    });
  }

  private name(value: string, node: Node | undefined, path: string, what: string): string {
    if (value.trim() === '' || /\s/.test(value))
      throw this.source.error(node, path, `${JSON.stringify(value)} is not ${what}: use a name without spaces`);
    if (value.startsWith(BROADCAST_PREFIX)) {
      throw this.source.error(
        node,
        path,
        `"${value}" is not ${what}: declare broadcast channels under broadcasts, without ${BROADCAST_PREFIX}`,
      );
    }
    return value;
  }

  private boolean(entry: Entry): boolean {
    const node = entry.value;
    if (!isScalar(node) || typeof node.value !== 'boolean')
      throw this.source.error(
        node ?? entry.keyNode,
        entry.path,
        `must be true or false, not ${node === undefined ? 'nothing' : kindOf(node)}`,
      );
    return node.value;
  }

  private priority(node: Node | undefined, path: string): number {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 9) {
      const shown = node === undefined ? 'nothing' : kindOf(node);
      throw this.source.error(node, path, `${shown} is outside 0–9; a priority is a whole number from 0 (lowest) to 9 (highest)`);
    }
    return value;
  }

  /** `max_length` (a whole number of 1 or more) and `overflow` (reject, the default, or drop-oldest); overflow alone is an error. */
  private queueBound(queue: Entry, maxLength: Entry | undefined, overflow: Entry | undefined): QueueBound | undefined {
    if (maxLength === undefined) {
      if (overflow !== undefined)
        throw this.source.error(overflow.keyNode, overflow.path, 'overflow needs max_length beside it (e.g. max_length: 1000)');
      return undefined;
    }
    const lengthNode = maxLength.value;
    const length = isScalar(lengthNode) ? lengthNode.value : undefined;
    const policy = overflow === undefined ? undefined : isScalar(overflow.value) ? overflow.value.value : null;
    try {
      checkQueueBound(length, undefined, queue.path);
    } catch {
      throw this.source.error(
        lengthNode ?? maxLength.keyNode,
        maxLength.path,
        `${lengthNode === undefined ? 'nothing' : kindOf(lengthNode)} is not a length; give the most tasks the queue may hold ` +
          `waiting, a whole number of 1 or more`,
      );
    }
    try {
      return checkQueueBound(length, policy, queue.path);
    } catch {
      throw this.source.error(
        overflow!.value ?? overflow!.keyNode,
        overflow!.path,
        `${overflow!.value === undefined ? 'nothing' : kindOf(overflow!.value)} is not a policy; use ${OVERFLOW_POLICIES.join(' or ')}`,
      );
    }
  }

  private priorityRange(entry: Entry): PriorityRange {
    const node = entry.value;
    let minNode: Node | undefined;
    let maxNode: Node | undefined;
    if (isSeq(node) && node.items.length === 2) {
      [minNode, maxNode] = node.items as Node[];
    } else if (isMap(node)) {
      const fields = this.entries(node, entry.path, RANGE_KEYS, 'priority_range takes');
      minNode = fields.find((field) => field.key === 'min')?.value;
      maxNode = fields.find((field) => field.key === 'max')?.value;
      if (minNode === undefined || maxNode === undefined)
        throw this.source.error(node, entry.path, 'give both min and max: { min: 2, max: 7 }');
    } else {
      throw this.source.error(
        node ?? entry.keyNode,
        entry.path,
        `write [min, max] or { min, max } with priorities 0–9, not ${node === undefined ? 'nothing' : kindOf(node)}`,
      );
    }
    const min = this.priority(minNode, entry.path);
    const max = this.priority(maxNode, entry.path);
    if (min > max) throw this.source.error(node, entry.path, `min ${min} is greater than max ${max}; write [min, max] with min ≤ max`);
    return { min, max };
  }

  private declaredQueue(entry: Entry): string {
    const name = this.string(entry);
    const resolved = this.aliases.get(name) ?? name;
    if (!this.declaredQueues.has(resolved)) {
      const known = [...this.declaredQueues.keys(), ...this.aliases.keys()];
      const hint = known.length > 0 ? `declared: ${known.join(', ')}` : 'none is declared';
      throw this.source.error(entry.value, entry.path, `"${name}" is not a declared queue (${hint}); declare it under queues`);
    }
    return resolved;
  }

  private declaredBroadcast(entry: Entry): string {
    const name = this.name(this.string(entry), entry.value, entry.path, 'a broadcast name');
    if (!this.broadcastNames.has(name)) {
      const hint = this.broadcastNames.size > 0 ? `declared: ${[...this.broadcastNames].join(', ')}` : 'none is declared';
      throw this.source.error(
        entry.value,
        entry.path,
        `"${name}" is not a declared broadcast (${hint}); declare it under broadcasts with delivery: fanout`,
      );
    }
    return name;
  }
}

/** Parses routing YAML (or JSON, which YAML reads too); `sourceName` appears in error messages. */
export function parseRoutingText(text: string, sourceName: string): RoutingConfig {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const source = new RoutingSource(sourceName, lines);
  const syntax = document.errors[0];
  if (syntax !== undefined) {
    const language = extname(sourceName).toLowerCase() === '.json' ? 'JSON' : 'YAML';
    throw new ConfigError(
      `${source.whereOffset(syntax.pos[0])}: invalid ${language}: ${syntax.message.split('\n')[0]}; fix the syntax at that position`,
    );
  }
  return new RoutingConfigReader(source).read(document.contents as Node | null);
}

/** Validates a routing config given as an object in code (the same shape as the file). */
export function parseRoutingObject(value: unknown, sourceName = 'routing config'): RoutingConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `${sourceName}: must be an object with default_queue, queues, broadcasts and routes, not ` +
        `${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
    );
  }
  return new RoutingConfigReader(new RoutingSource(sourceName)).read(new Document(value).contents as Node | null);
}

/** Reads and validates a routing file (`.yaml`, `.yml` or `.json`). */
export function readRoutingFile(file: string): RoutingConfig {
  const relativeName = relative(process.cwd(), file);
  const shown = relativeName !== '' && !relativeName.startsWith('..') && !isAbsolute(relativeName) ? relativeName : file;
  if (!['.yaml', '.yml', '.json'].includes(extname(file).toLowerCase())) {
    throw new ConfigError(`${shown}: a routing file must end in .yaml, .yml or .json`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new ConfigError(
        `${shown}: no such routing file; check the path given to --routing-config, STEM_ROUTING_CONFIG or routing({ file })`,
      );
    throw new ConfigError(`${shown}: the routing file cannot be read (${code ?? (error as Error).message})`, { cause: error });
  }
  return parseRoutingText(text, shown);
}
