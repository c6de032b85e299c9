// The Stem dashboard page: plain DOM, no build step. Everything a task carries (args, results,
// errors, names, ids) reaches the page as text nodes or attribute values, never as HTML:
// `h()` below is the only way elements are made, and it never sets innerHTML.

const TOKEN_KEY = 'stem-dashboard-token';
const STATES = ['queued', 'running', 'retried', 'succeeded', 'failed', 'cancelled'];
const TASK_EVENT_STATE = {
  'task-received': 'received',
  'task-started': 'running',
  'task-succeeded': 'succeeded',
  'task-failed': 'failed',
  'task-retried': 'retried',
  'task-cancelled': 'cancelled',
  'task-revoked': 'revoked',
  'task-dead-lettered': 'dead-lettered',
};
const LIVE_ROWS = 50;

let features = { actions: false, readOnly: false };
let current = { render: () => {}, onEvent: () => {} };
const liveTasks = new Map();

/** Makes an element; strings and numbers become text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

/** Runs an action: a POST with the token in a header (never a cookie), so other sites cannot forge it. */
async function act(path, body, done) {
  try {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stem-token': token() },
      body: JSON.stringify(body ?? {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error ?? `${response.status} ${response.statusText}`);
    flash(done, false);
    current.render();
    return answer;
  } catch (error) {
    flash(error.message, true);
    return undefined;
  }
}

function flash(message, isError) {
  const el = document.getElementById('flash');
  el.textContent = message;
  el.className = isError ? 'error' : '';
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (el.hidden = true), isError ? 8000 : 3000);
}

function ago(ms) {
  if (ms === undefined || ms === null) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function time(ms) {
  return ms === undefined || ms === null ? '—' : h('span', { title: new Date(ms).toISOString() }, ago(ms));
}

function stateBadge(state) {
  return h('span', { class: `state state-${state}`, 'data-state': state }, state);
}

function taskLink(id, label) {
  return h('a', { class: 'id', href: `#/task/${encodeURIComponent(id)}` }, label ?? id);
}

function json(value) {
  return h('pre', {}, JSON.stringify(value, null, 2) ?? String(value));
}

function button(label, onclick, props = {}) {
  return h('button', { type: 'button', onclick, ...props }, label);
}

/** Action buttons only where actions can run: with a token configured and not read-only. */
function actions(...buttons) {
  return features.actions ? buttons : [];
}

function table(headers, rows, empty) {
  if (rows.length === 0) return h('div', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((label) => h('th', { class: label.startsWith('#') ? 'num' : undefined }, label.replace(/^#/, ''))),
      ),
    ),
    h('tbody', {}, rows),
  );
}

/** Bumped by each route change: a view finishing for an earlier route must not replace the current one. */
let routeSeq = 0;

/** Shows `nodes` when the route is still `seq`'s. */
function showFor(seq, ...nodes) {
  if (seq !== routeSeq) return;
  const view = document.getElementById('view');
  view.replaceChildren();
  append(view, nodes);
}

// ---------------------------------------------------------------- overview

function liveRow(id, task) {
  return h(
    'tr',
    { 'data-task-id': id },
    h('td', {}, taskLink(id)),
    h('td', {}, task.name ?? '—'),
    h('td', {}, stateBadge(task.state)),
    h('td', {}, task.queue ?? '—'),
    h('td', { class: 'num' }, task.attempt ?? '—'),
    h('td', {}, task.workerId),
    h('td', { class: 'num' }, task.runtimeMs === undefined ? '—' : `${task.runtimeMs} ms`),
    h('td', {}, time(task.at)),
  );
}

function liveTable() {
  const rows = [...liveTasks.entries()].reverse().map(([id, task]) => liveRow(id, task));
  return h(
    'div',
    { id: 'live-tasks' },
    table(
      ['task', 'name', 'state', 'queue', '#attempt', 'worker', '#runtime', 'updated'],
      rows,
      'No task events yet. Workers publish them when started with --events (or events: true).',
    ),
  );
}

function noteTaskEvent(event) {
  const state = TASK_EVENT_STATE[event.type];
  if (state === undefined) return;
  const known = liveTasks.get(event.taskId) ?? {};
  liveTasks.delete(event.taskId);
  liveTasks.set(event.taskId, {
    name: event.name ?? known.name,
    queue: event.queue ?? known.queue,
    attempt: event.attempt ?? known.attempt,
    workerId: event.workerId,
    runtimeMs: event.runtimeMs ?? (state === 'running' || state === 'received' ? undefined : known.runtimeMs),
    // dead-lettered follows failed: keep showing failed, the state the backend has.
    state: state === 'dead-lettered' ? (known.state ?? 'failed') : state,
    at: event.at,
  });
  while (liveTasks.size > LIVE_ROWS) liveTasks.delete(liveTasks.keys().next().value);
}

function rateLimitForm() {
  return h(
    'form',
    {
      class: 'toolbar',
      id: 'rate-limit',
      onsubmit: (event) => {
        event.preventDefault();
        const form = new FormData(event.target);
        const task = String(form.get('task')).trim();
        const rate = String(form.get('rate')).trim();
        if (task === '') return flash('name the task whose rate limit changes', true);
        const body = rate === 'default' ? {} : { rate: rate === 'none' || rate === '' ? null : rate };
        act(`api/rate-limits/${encodeURIComponent(task)}`, body, `rate limit of ${task}: ${rate || 'none'}`);
      },
    },
    h('span', { class: 'muted' }, 'Rate limit:'),
    h('input', { name: 'task', placeholder: 'task name', 'aria-label': 'task name' }),
    h('input', { name: 'rate', placeholder: '10/s, 100/m, none, default', 'aria-label': 'rate' }),
    h('button', { type: 'submit' }, 'Set'),
  );
}

async function overview() {
  const seq = routeSeq;
  const data = await getJson('api/overview');
  if (liveTasks.size === 0) for (const event of data.recent) noteTaskEvent(event);
  const queueRows = data.queues.map((queue) =>
    h(
      'tr',
      { 'data-queue': queue.name },
      h('td', {}, queue.name, queue.paused ? h('span', { class: 'muted' }, ' (paused)') : null),
      h('td', { class: 'num' }, queue.waiting),
      h('td', { class: 'num' }, queue.running),
      h('td', { class: 'num' }, queue.perMinute.succeeded),
      h('td', { class: 'num' }, queue.perMinute.failed),
      h('td', { class: 'num' }, queue.dead > 0 ? h('a', { href: `#/dead-letters/${encodeURIComponent(queue.name)}` }, queue.dead) : 0),
      h(
        'td',
        {},
        actions(
          ...(features.pause
            ? [
                queue.paused
                  ? button('Resume', () => act(`api/queues/${encodeURIComponent(queue.name)}/resume`, {}, `resumed ${queue.name}`))
                  : button('Pause', () => act(`api/queues/${encodeURIComponent(queue.name)}/pause`, {}, `paused ${queue.name}`)),
              ]
            : []),
        ),
      ),
    ),
  );
  const workerRows = data.workers.map((worker) =>
    h(
      'tr',
      { 'data-worker': worker.workerId },
      h('td', { class: 'id' }, worker.workerId),
      h('td', {}, worker.hostname, ' / ', worker.pid),
      h('td', {}, worker.queues.join(', ')),
      h('td', { class: 'num' }, worker.stats.concurrency ?? '—'),
      h('td', { class: 'num' }, worker.stats.inflight ?? '—'),
      h('td', { class: 'num' }, worker.stats.processed ?? '—'),
      h(
        'td',
        {},
        worker.runningTasks.length === 0 ? '—' : worker.runningTasks.map((run) => [taskLink(run.taskId, run.name ?? run.taskId), ' ']),
      ),
      h('td', {}, time(worker.at)),
    ),
  );
  const events = data.events;
  showFor(
    seq,
    h('h2', {}, 'Queues'),
    table(['queue', '#waiting', '#running', '#done/min', '#failed/min', '#dead', ''], queueRows, 'No queues yet.'),
    features.rateLimit ? actions(rateLimitForm()) : null,
    h('h2', {}, 'Workers'),
    table(
      ['worker', 'host / pid', 'queues', '#concurrency', '#inflight', '#processed', 'running tasks', 'heartbeat'],
      workerRows,
      'No live worker.',
    ),
    h('h2', {}, 'Live tasks'),
    h(
      'p',
      { class: 'muted' },
      events.listening
        ? `From the event stream, as workers publish them (${events.received} events since the dashboard started).`
        : `Not listening to events: ${events.error ?? 'starting…'}`,
    ),
    liveTable(),
  );
}

// ---------------------------------------------------------------- task list

async function taskList(params) {
  const seq = routeSeq;
  const state = params.get('state') ?? '';
  const name = params.get('name') ?? '';
  const queue = params.get('queue') ?? '';
  const tabs = h(
    'div',
    { class: 'tabs' },
    ['', ...STATES].map((one) =>
      h(
        'a',
        { href: `#/tasks?${new URLSearchParams({ state: one, name, queue })}`, class: one === state ? 'active' : undefined },
        one || 'all',
      ),
    ),
  );
  const search = h(
    'form',
    {
      class: 'toolbar',
      id: 'task-search',
      onsubmit: (event) => {
        event.preventDefault();
        const form = new FormData(event.target);
        location.hash = `#/tasks?${new URLSearchParams({ state, name: form.get('name'), queue: form.get('queue') })}`;
      },
    },
    h('input', { name: 'name', placeholder: 'task name', value: name }),
    h('input', { name: 'queue', placeholder: 'queue', value: queue }),
    h('button', { type: 'submit' }, 'Search'),
  );
  const body = h('tbody', {});
  const more = h('div', { class: 'toolbar' });
  const load = async (cursor) => {
    const query = new URLSearchParams({ state, name, queue });
    if (cursor) query.set('cursor', cursor);
    const page = await getJson(`api/tasks?${query}`);
    for (const task of page.tasks)
      body.append(
        h(
          'tr',
          { 'data-task-id': task.id },
          h('td', {}, taskLink(task.id)),
          h('td', {}, task.name ?? '—'),
          h('td', {}, stateBadge(task.state)),
          h('td', {}, task.queue ?? '—'),
          h('td', { class: 'num' }, task.attempt),
          h(
            'td',
            { class: 'args' },
            task.args.recorded ? JSON.stringify(task.args.value).slice(0, 120) : h('span', { class: 'muted' }, 'not recorded'),
          ),
          h('td', {}, time(task.updatedAt)),
        ),
      );
    more.replaceChildren(
      page.cursor ? button('Load more', () => load(page.cursor)) : h('span', { class: 'muted' }, `${body.children.length} shown`),
    );
  };
  const headers = ['task', 'name', 'state', 'queue', '#attempt', 'args', 'updated'];
  showFor(
    seq,
    h('h2', {}, 'Tasks'),
    tabs,
    search,
    groupForm(),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((label) => h('th', {}, label.replace(/^#/, ''))),
        ),
      ),
      body,
    ),
    more,
  );
  await load();
}

// ---------------------------------------------------------------- one task

async function taskPage(id) {
  const seq = routeSeq;
  const data = await getJson(`api/tasks/${encodeURIComponent(id)}`);
  const status = data.status ?? { id, state: 'pending', attempt: 0 };
  const canRetry = features.retry && (status.state === 'failed' || status.state === 'cancelled');
  const canRevoke = features.revoke && !['succeeded', 'failed', 'cancelled'].includes(status.state);
  const meta = status.meta ?? {};
  const timeline = data.timeline.map((event) =>
    h(
      'tr',
      {},
      h('td', {}, new Date(event.at).toISOString()),
      h('td', {}, stateBadge(TASK_EVENT_STATE[event.type] ?? event.type)),
      h('td', { class: 'num' }, event.attempt ?? '—'),
      h('td', {}, event.workerId),
      h('td', { class: 'num' }, event.runtimeMs === undefined ? '—' : `${event.runtimeMs} ms`),
      h('td', {}, event.error ? `${event.error.type}: ${event.error.message}` : (event.reason ?? '')),
    ),
  );
  showFor(
    seq,
    h('h2', {}, 'Task ', h('span', { class: 'id', id: 'task-id' }, id)),
    h(
      'div',
      { class: 'toolbar' },
      actions(
        canRetry ? button('Retry', () => act(`api/tasks/${encodeURIComponent(id)}/retry`, {}, `retrying ${id}`), { id: 'retry' }) : null,
        canRevoke ? button('Revoke', () => act(`api/tasks/${encodeURIComponent(id)}/revoke`, {}, `revoked ${id}`)) : null,
        canRevoke
          ? button('Terminate', () => act(`api/tasks/${encodeURIComponent(id)}/revoke`, { terminate: true }, `terminated ${id}`), {
              class: 'danger',
            })
          : null,
      ),
    ),
    h(
      'dl',
      {},
      h('dt', {}, 'name'),
      h('dd', { id: 'task-name' }, status.name ?? '—'),
      h('dt', {}, 'state'),
      h('dd', { id: 'task-state' }, stateBadge(status.state)),
      h('dt', {}, 'queue'),
      h('dd', {}, status.queue ?? '—'),
      h('dt', {}, 'attempt'),
      h('dd', {}, status.attempt, status.generation ? ` (generation ${status.generation})` : ''),
      h('dt', {}, 'worker'),
      h('dd', {}, status.workerId ?? '—'),
      h('dt', {}, 'updated'),
      h('dd', {}, status.updatedAt ? new Date(status.updatedAt).toISOString() : '—'),
      ...(groupOf(status)
        ? [h('dt', {}, 'group'), h('dd', {}, h('a', { href: `#/group/${encodeURIComponent(groupOf(status))}` }, groupOf(status)))]
        : []),
      ...['parentId', 'rootId', 'chainId', 'groupId', 'chordId']
        .filter((key) => typeof meta[key] === 'string' || typeof meta[`stem.${key}`] === 'string')
        .flatMap((key) => [h('dt', {}, key), h('dd', {}, taskLink(meta[key] ?? meta[`stem.${key}`]))]),
    ),
    h('h2', {}, 'Arguments'),
    h('div', { id: 'task-args' }, data.args.recorded ? json(data.args.value) : h('span', { class: 'muted' }, 'not recorded')),
    status.state === 'succeeded' || status.result !== undefined
      ? [h('h2', {}, 'Result'), h('div', { id: 'task-result' }, json(status.result))]
      : null,
    status.error
      ? [
          h('h2', {}, 'Error'),
          h(
            'div',
            { id: 'task-error' },
            h('p', {}, h('strong', {}, status.error.type), ': ', status.error.message),
            status.error.stack ? h('pre', {}, status.error.stack) : null,
          ),
        ]
      : null,
    status.progress !== undefined ? [h('h2', {}, 'Progress'), json(status.progress)] : null,
    h('h2', {}, 'Timeline'),
    table(
      ['at', 'event', '#attempt', 'worker', '#runtime', 'detail'],
      timeline,
      'No events seen for this task since the dashboard started listening.',
    ),
  );
}

// ---------------------------------------------------------------- groups and chords

/** The group (or chord body) a task's recorded envelope names, if any. */
function groupOf(status) {
  const meta = status.envelope?.meta ?? {};
  if (typeof meta['stem.group'] === 'string') return meta['stem.group'];
  if (typeof meta['stem.chord']?.id === 'string') return meta['stem.chord'].id;
  return undefined;
}

async function groupPage(id) {
  const seq = routeSeq;
  const group = await getJson(`api/groups/${encodeURIComponent(id)}`);
  const rows = group.members.map((member, index) =>
    h(
      'tr',
      { 'data-task-id': member.id },
      h('td', { class: 'num' }, index),
      h('td', {}, taskLink(member.id)),
      h('td', {}, member.name ?? '—'),
      h('td', {}, stateBadge(member.state)),
    ),
  );
  showFor(
    seq,
    h('h2', {}, 'Group ', h('span', { class: 'id' }, id)),
    h(
      'p',
      {},
      h('progress', { max: group.expected, value: group.completed, id: 'group-progress' }),
      ` ${group.completed} of ${group.expected} finished`,
    ),
    table(['#', 'task', 'name', 'state'], rows, 'No members.'),
  );
}

function groupForm() {
  return h(
    'form',
    {
      class: 'toolbar',
      onsubmit: (event) => {
        event.preventDefault();
        const id = String(new FormData(event.target).get('group')).trim();
        if (id) location.hash = `#/group/${encodeURIComponent(id)}`;
      },
    },
    h('input', { name: 'group', placeholder: 'group or chord id', 'aria-label': 'group id' }),
    h('button', { type: 'submit' }, 'Open group'),
  );
}

// ---------------------------------------------------------------- dead letters

async function deadLetters(queue) {
  const seq = routeSeq;
  const overviewData = await getJson('api/overview');
  const queues = overviewData.queues.map((one) => one.name);
  const chosen = queue || overviewData.queues.find((one) => one.dead > 0)?.name || queues[0] || 'default';
  const page = await getJson(`api/dead-letters?queue=${encodeURIComponent(chosen)}`);
  const base = `api/dead-letters/${encodeURIComponent(chosen)}`;
  const rows = page.entries.map((entry) =>
    h(
      'tr',
      { 'data-dead-letter': entry.id },
      h('td', {}, taskLink(entry.id)),
      h('td', {}, entry.envelope?.name ?? '—'),
      h('td', {}, entry.reason),
      h('td', {}, entry.meta?.error ? `${entry.meta.error.type ?? ''}: ${entry.meta.error.message ?? ''}` : ''),
      h(
        'td',
        { class: 'args' },
        entry.envelope ? JSON.stringify(entry.envelope.args).slice(0, 120) : h('span', { class: 'muted' }, 'not recorded'),
      ),
      h('td', {}, time(entry.deadAt)),
      h(
        'td',
        {},
        actions(
          button('Replay', () => act(`${base}/replay`, { ids: [entry.id] }, `replayed ${entry.id}`), { class: 'replay' }),
          ' ',
          button('Purge', () => act(`${base}/purge`, { ids: [entry.id] }, `purged ${entry.id}`), { class: 'danger purge' }),
        ),
      ),
    ),
  );
  showFor(
    seq,
    h('h2', {}, 'Dead letters'),
    h(
      'div',
      { class: 'toolbar' },
      h(
        'select',
        { id: 'dlq-queue', onchange: (event) => (location.hash = `#/dead-letters/${encodeURIComponent(event.target.value)}`) },
        (queues.includes(chosen) ? queues : [chosen, ...queues]).map((name) =>
          h('option', { value: name, selected: name === chosen }, name),
        ),
      ),
      h('span', { class: 'muted' }, `${page.total} dead letter(s)`),
      page.total > 0
        ? actions(
            button('Replay all', () => act(`${base}/replay`, {}, `replayed the dead letters of ${chosen}`)),
            button(
              'Purge all',
              () =>
                confirm(`Delete all ${page.total} dead letters of ${chosen}?`) &&
                act(`${base}/purge`, {}, `purged the dead letters of ${chosen}`),
              { class: 'danger' },
            ),
          )
        : null,
    ),
    table(['task', 'name', 'reason', 'error', 'args', 'dead', ''], rows, `No dead letters in ${chosen}.`),
  );
}

// ---------------------------------------------------------------- schedules

async function schedules() {
  const seq = routeSeq;
  const data = await getJson('api/schedules');
  const rows = data.schedules.map((entry) =>
    h(
      'tr',
      { 'data-schedule': entry.id },
      h('td', {}, entry.id),
      h('td', {}, entry.task),
      h('td', { class: 'id' }, typeof entry.schedule === 'string' ? entry.schedule : JSON.stringify(entry.schedule)),
      h('td', {}, entry.queue ?? '—'),
      h('td', {}, entry.enabled ? 'enabled' : 'disabled'),
      h('td', {}, entry.enabled && entry.nextRunAt ? new Date(entry.nextRunAt).toISOString() : '—'),
      h('td', {}, time(entry.lastRunAt)),
      h('td', { class: 'num' }, entry.totalRuns ?? 0),
      h(
        'td',
        {},
        features.schedules
          ? actions(
              entry.enabled
                ? button('Disable', () => act(`api/schedules/${encodeURIComponent(entry.id)}/disable`, {}, `disabled ${entry.id}`))
                : button('Enable', () => act(`api/schedules/${encodeURIComponent(entry.id)}/enable`, {}, `enabled ${entry.id}`)),
            )
          : [],
      ),
    ),
  );
  showFor(
    seq,
    h('h2', {}, 'Schedules'),
    table(['id', 'task', 'schedule', 'queue', 'enabled', 'next run', 'last run', '#runs', ''], rows, 'No schedules in the schedule store.'),
  );
}

// ---------------------------------------------------------------- routing, live updates

/** True while the user types in a form of the view: a refresh then would throw away what they typed. */
function typing() {
  return document.activeElement?.closest('#view form') != null;
}

/** Calls `fn` once `ms` after the last call, unless the route changed meanwhile; waits while the user types. */
function debounce(fn, ms) {
  let timer;
  const seq = routeSeq;
  const run = () => {
    if (seq !== routeSeq) return;
    if (typing()) timer = setTimeout(run, ms);
    else fn();
  };
  return () => {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
}

function route() {
  const seq = ++routeSeq;
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search] = hash.split('?');
  const params = new URLSearchParams(search ?? '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let render;
  let onEvent = () => {};
  let nav = parts[0] ?? 'overview';
  if (parts[0] === 'tasks') {
    render = () => taskList(params);
    onEvent = debounce(() => !params.get('cursor') && render(), 1000);
  } else if (parts[0] === 'task' && parts[1]) {
    nav = 'tasks';
    render = () => taskPage(parts[1]);
    const refresh = debounce(() => render(), 150);
    onEvent = (event) => event.taskId === parts[1] && refresh();
  } else if (parts[0] === 'group' && parts[1]) {
    nav = 'tasks';
    render = () => groupPage(parts[1]);
    const refresh = debounce(() => render(), 300);
    onEvent = (event) => event.taskId && document.querySelector(`tr[data-task-id="${CSS.escape(event.taskId)}"]`) && refresh();
  } else if (parts[0] === 'dead-letters') {
    render = () => deadLetters(parts[1]);
    const refresh = debounce(() => render(), 500);
    onEvent = (event) => event.type === 'task-dead-lettered' && refresh();
  } else if (parts[0] === 'schedules') {
    render = () => schedules();
  } else {
    nav = 'overview';
    const refresh = debounce(() => render(), 1000);
    render = () => overview();
    onEvent = (event) => {
      const table = document.getElementById('live-tasks');
      if (table && event.taskId) table.replaceWith(liveTable());
      refresh();
    };
  }
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === nav);
  current = {
    render: () => render().catch((error) => showFor(seq, h('h2', {}, 'Error'), h('p', { class: 'error' }, error.message))),
    onEvent,
  };
  current.render();
}

function connectEvents() {
  const live = document.getElementById('live');
  const source = new EventSource('api/events');
  source.addEventListener('hello', (message) => {
    const status = JSON.parse(message.data);
    live.textContent = status.listening ? 'live' : 'no event stream';
    live.className = status.listening ? 'live on' : 'live off';
  });
  source.onmessage = (message) => {
    for (const line of message.data.split('\n')) {
      const event = JSON.parse(line);
      if (event.taskId) noteTaskEvent(event);
      current.onEvent(event);
    }
  };
  source.onerror = () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  };
}

function setUpToken() {
  const match = /^#token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    // Out of the address bar and the history at once.
    history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  }
  const form = document.getElementById('token-form');
  const state = document.getElementById('token-state');
  const refresh = () => {
    form.hidden = !features.actions || token() !== '';
    state.textContent = features.readOnly
      ? 'read-only'
      : !features.actions
        ? 'actions off (no token configured)'
        : token()
          ? 'actions unlocked'
          : '';
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('token-input');
    sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = '';
    refresh();
  });
  return refresh;
}

async function start() {
  const refreshToken = setUpToken();
  try {
    features = (await getJson('api/overview')).features;
  } catch {
    // The view reports the error.
  }
  refreshToken();
  window.addEventListener('hashchange', route);
  route();
  connectEvents();
  // Heartbeats and queue depths come from the stores, not from events: the overview polls them.
  setInterval(() => !document.hidden && !typing() && location.hash.replace(/^#\/?/, '') === '' && current.render(), 5000);
}

start();
