// The steward dashboard: plain JS, no dependencies. Everything from the server goes into
// the page with textContent; the only live feed is the event stream (/ui/api/stream).
'use strict';

const $ = (sel) => document.querySelector(sel);
const STATE_SYMBOL = {
  running: '●', starting: '◐', stopping: '◑', backoff: '↻', stopped: '■', exited: '✕', fatal: '⚠',
};
const HEALTH_SYMBOL = { healthy: '✓', unhealthy: '✕', unknown: '?' };
const MAX_LOG_LINES = 2000;
const MAX_EVENTS = 200;
const HOUR = 3600;

const app = {
  me: null, // {name, role, csrf}
  source: null, // EventSource
  status: { programs: [], groups: [] },
  usage: new Map(), // name -> latest {rss_bytes, cpu_percent}
  history: new Map(), // name -> [[t, rss, cpu, restarts]]
  selected: null,
  logAbort: null,
  statusAt: Date.now(),
};

// ---- helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  if (text != null) e.textContent = String(text);
  return e;
}

function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function duration(secs) {
  if (secs == null) return '—';
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24;
  const m = Math.floor(secs / 60) % 60, s = secs % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function exitText(e) {
  if (!e) return '—';
  if (e.code != null) return `code ${e.code}`;
  if (e.signal != null) return `signal ${e.signal}`;
  return '—';
}

// Escape sequences (colors, cursor moves, titles) are dropped; other control characters are
// shown as their visible Control Pictures.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
function cleanLine(s) {
  return s.replace(ANSI, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) =>
    String.fromCharCode(c === '\x7f' ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

function canOperate() {
  return app.me && (app.me.role === 'operator' || app.me.role === 'admin');
}

function notice(text) {
  const n = $('#notice');
  n.textContent = text;
  n.hidden = !text;
  if (text) setTimeout(() => { if (n.textContent === text) n.hidden = true; }, 8000);
}

// ---- session -------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (app.me) headers['X-Steward-CSRF'] = app.me.csrf;
  }
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin', cache: 'no-store',
  });
  if (res.status === 401 && app.me) sessionEnded();
  return res;
}

async function errorOf(res) {
  try {
    const j = await res.json();
    return j.error || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

function showSignIn(message) {
  app.me = null;
  if (app.source) { app.source.close(); app.source = null; }
  stopLog();
  $('#main').hidden = true;
  $('#who').hidden = true;
  setOffline(false);
  $('#signin-view').hidden = false;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message || '';
  $('#token').value = '';
  $('#token').focus();
}

function sessionEnded() {
  showSignIn('Your session has ended; sign in again.');
}

function showMain(me) {
  app.me = me;
  $('#signin-view').hidden = true;
  $('#signin').hidden = true;
  $('#main').hidden = false;
  $('#who').hidden = false;
  $('#whoami').textContent = `${me.name} (${me.role})`;
  const reload = $('#reload');
  reload.disabled = !canOperate();
  reload.title = canOperate() ? 'Read the config file again and apply the difference' : 'Needs the operator role';
  connect();
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $('#signin-error');
  err.textContent = '';
  let res;
  try {
    res = await fetch('session', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: $('#token').value }), credentials: 'same-origin',
    });
  } catch {
    err.textContent = 'Cannot reach steward; try again.';
    return;
  }
  if (res.ok) {
    $('#token').value = '';
    showMain(await res.json());
  } else {
    err.textContent = await errorOf(res);
  }
}

async function signOut() {
  await api('DELETE', 'session').catch(() => {});
  showSignIn('Signed out.');
}

// ---- the live stream -----------------------------------------------------------------------

function connect() {
  if (app.source) app.source.close();
  const es = new EventSource('api/stream');
  app.source = es;
  es.onopen = () => setOffline(false);
  es.onerror = () => {
    if (app.source !== es) return;
    setOffline(true);
    checkAfterDrop(es);
  };
  es.addEventListener('hello', (e) => {
    const h = JSON.parse(e.data);
    $('#version').textContent = h.version ? `v${h.version}` : '';
    setOffline(false);
  });
  es.addEventListener('status', (e) => { app.status = JSON.parse(e.data); app.statusAt = Date.now(); renderPrograms(); });
  es.addEventListener('event', (e) => addEvent(JSON.parse(e.data)));
  es.addEventListener('history', (e) => {
    const h = JSON.parse(e.data);
    app.history = new Map(Object.entries(h.programs || {}));
    renderCharts();
  });
  es.addEventListener('usage', (e) => addUsage(JSON.parse(e.data)));
}

// While the live connection is down the table may be out of date: its actions wait.
function setOffline(offline) {
  $('#offline').hidden = !offline;
  document.body.classList.toggle('offline', offline);
}

// The stream dropped: a session that ended goes back to the sign-in; otherwise the browser
// reconnects by itself, or, if it gave up, we do.
async function checkAfterDrop(es) {
  let res;
  try {
    res = await fetch('session', { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    res = null;
  }
  if (app.source !== es) return;
  if (res && res.status === 401) {
    sessionEnded();
    return;
  }
  if (es.readyState === EventSource.CLOSED) setTimeout(() => { if (app.source === es) connect(); }, 2000);
}

// ---- programs ------------------------------------------------------------------------------

function actionButton(action, label, target, title) {
  const b = el('button', { type: 'button', 'data-action': action, 'data-target': target }, label);
  if (!canOperate()) {
    b.disabled = true;
    b.title = 'Needs the operator role';
  } else if (title) {
    b.title = title;
  }
  return b;
}

function cell(cls, label, text) {
  return el('td', { class: cls, 'data-label': label }, text);
}

function programRow(p) {
  const tr = el('tr', { 'data-program': p.name, 'data-state': p.state });
  if (p.name === app.selected) tr.classList.add('selected');
  const name = el('td', { 'data-label': 'Name' });
  name.append(el('button', { type: 'button', class: 'name', title: `Show the log of ${p.name}` }, p.name));
  tr.append(name);
  const st = cell(`state st-${p.state}`, 'State', `${STATE_SYMBOL[p.state] || '•'} ${p.state}`);
  if (p.last_error) st.title = p.last_error;
  if (p.waiting_for && p.waiting_for.length) st.title = `waiting for ${p.waiting_for.join(', ')}`;
  tr.append(st);
  tr.append(cell('pid num', 'PID', p.pid ?? '—'));
  tr.append(cell('uptime num', 'Uptime', duration(uptimeOf(p))));
  tr.append(cell('restarts num', 'Restarts', p.restarts ?? 0));
  tr.append(cell('exit', 'Last exit', exitText(p.last_exit)));
  const h = p.health || 'unknown';
  tr.append(cell(`health h-${h}`, 'Health', p.health ? `${HEALTH_SYMBOL[h] || '•'} ${h}` : '—'));
  // A program that is not running has no memory or CPU, whatever the last sample said.
  const u = p.pid != null ? app.usage.get(p.name) : undefined;
  tr.append(cell('mem num', 'Memory', u ? bytes(u.rss_bytes) : '—'));
  tr.append(cell('cpu num', 'CPU', u && u.cpu_percent != null ? `${u.cpu_percent.toFixed(1)} %` : '—'));
  const actions = el('td', { class: 'actions', 'data-label': 'Actions' });
  actions.append(
    actionButton('start', 'Start', p.name), actionButton('stop', 'Stop', p.name),
    actionButton('restart', 'Restart', p.name));
  tr.append(actions);
  return tr;
}

function groupRow(g) {
  const tr = el('tr', { class: 'group', 'data-group': g.name });
  const td = el('td', { colspan: 10, 'data-label': 'Group' });
  td.append(el('span', {}, `${g.name}: ${g.running} of ${g.total} running`));
  td.append(document.createTextNode(' '));
  td.append(actionButton('roll', 'Rolling restart', g.name, `Restart the instances of ${g.name} one by one`));
  const scale = el('input', {
    type: 'number', class: 'scale', min: 0, max: 1024, value: g.instances ?? g.total,
    'aria-label': `Instances of ${g.name}`, 'data-target': g.name,
  });
  if (!canOperate()) { scale.disabled = true; scale.title = 'Needs the operator role'; }
  td.append(document.createTextNode(' '), scale, document.createTextNode(' '),
    actionButton('scale', 'Scale', g.name, `Run this many instances of ${g.name}`));
  tr.append(td);
  return tr;
}

function rowKey(tr) {
  return tr.dataset.program != null ? `p:${tr.dataset.program}` : `g:${tr.dataset.group}`;
}

// Makes `old` look like `fresh`, changing only what differs. An input keeps what the user
// typed: its value attribute is only the default the browser shows until then.
function morph(old, fresh) {
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName) {
    old.replaceWith(fresh);
    return fresh;
  }
  if (old.nodeType === Node.TEXT_NODE) {
    if (old.data !== fresh.data) old.data = fresh.data;
    return old;
  }
  for (const a of [...old.attributes]) if (!fresh.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of fresh.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  const have = [...old.childNodes];
  const want = [...fresh.childNodes];
  want.forEach((n, i) => (i < have.length ? morph(have[i], n) : old.append(n)));
  for (const n of have.slice(want.length)) n.remove();
  return old;
}

function uptimeOf(p) {
  if (p.uptime_secs == null) return null;
  return p.uptime_secs + (Date.now() - app.statusAt) / 1000;
}

function renderPrograms() {
  const tbody = $('#programs tbody');
  // Keep the keyboard focus on the same control across the redraw.
  const f = document.activeElement;
  const row = f && f.closest && f.closest('tr');
  const keep = row && tbody.contains(row)
    ? { key: row.dataset.program || row.dataset.group, action: f.dataset.action, name: f.classList.contains('name'), scale: f.classList.contains('scale') }
    : null;
  const rows = [];
  const groups = new Map((app.status.groups || []).filter((g) => g.instances != null).map((g) => [g.name, g]));
  const done = new Set();
  for (const p of app.status.programs || []) {
    const group = p.program && groups.get(p.program);
    if (group && !done.has(group.name)) { rows.push(groupRow(group)); done.add(group.name); }
    rows.push(programRow(p));
  }
  // Rows are updated in place, not replaced: a button being pressed, a number being typed
  // into a scale field and the focus all stay where they are across live updates.
  const old = new Map([...tbody.rows].map((r) => [rowKey(r), r]));
  rows.forEach((fresh, i) => {
    const r = old.has(rowKey(fresh)) ? morph(old.get(rowKey(fresh)), fresh) : fresh;
    old.delete(rowKey(fresh));
    if (tbody.rows[i] !== r) tbody.insertBefore(r, tbody.rows[i] || null);
  });
  for (const r of old.values()) r.remove();
  const running = (app.status.programs || []).filter((p) => p.state === 'running').length;
  $('#summary').textContent = `${running} of ${(app.status.programs || []).length} running`;
  if (keep) {
    const r = [...tbody.rows].find((x) => (x.dataset.program || x.dataset.group) === keep.key);
    const target = r && (keep.name ? r.querySelector('button.name')
      : keep.scale ? r.querySelector('input.scale')
      : keep.action ? r.querySelector(`[data-action="${keep.action}"]`) : null);
    if (target) target.focus();
  }
}

async function act(action, target, row) {
  let path, body;
  if (action === 'roll') { path = 'api/v1/restart'; body = { names: [target], no_wait: true }; }
  else if (action === 'scale') {
    const input = row.querySelector('input.scale');
    const n = Number(input.value);
    if (!Number.isInteger(n) || n < 0) { notice('Give a whole number of instances.'); return; }
    path = 'api/v1/scale'; body = { name: target, instances: n, no_wait: true };
  } else { path = `api/v1/${action}`; body = { names: [target], no_wait: true }; }
  try {
    const res = await api('POST', path, body);
    if (res.status === 401) return;
    if (!res.ok) { notice(`${action} ${target}: ${await errorOf(res)}`); return; }
    const reply = await res.json().catch(() => null);
    const failed = reply && reply.results ? reply.results.filter((r) => !r.ok) : [];
    if (failed.length) notice(failed.map((r) => r.error || `${r.name}: ${r.state}`).join('; '));
  } catch {
    notice(`${action} ${target}: steward did not answer`);
  }
}

async function reloadConfig() {
  try {
    const res = await api('POST', 'api/v1/reload', {});
    if (res.status === 401) return;
    if (!res.ok) { notice(`reload: ${await errorOf(res)}`); return; }
    const d = await res.json();
    const parts = ['added', 'removed', 'changed'].filter((k) => d[k] && d[k].length).map((k) => `${k} ${d[k].join(', ')}`);
    if (d.needs_restart && d.needs_restart.length) parts.push(`on restart: ${d.needs_restart.join(', ')}`);
    notice(`Config reloaded${parts.length ? ': ' + parts.join('; ') : ', nothing changed'}.`);
  } catch {
    notice('reload: steward did not answer');
  }
}

// ---- events --------------------------------------------------------------------------------

function addEvent(e) {
  const list = $('#events');
  const li = el('li');
  const t = new Date(e.time);
  li.append(el('time', { datetime: e.time }, isNaN(t) ? e.time : t.toLocaleTimeString()));
  let text = `${e.program}: ${e.kind}`;
  if (e.from || e.to) text += ` ${e.from || ''}${e.from && e.to ? ' → ' : ''}${e.to || ''}`;
  if (e.message) text += ` (${e.message})`;
  li.append(document.createTextNode(text));
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

// ---- usage and charts ----------------------------------------------------------------------

function addUsage(sample) {
  const now = Math.floor(Date.parse(sample.time) / 1000) || Math.floor(Date.now() / 1000);
  app.usage = new Map(sample.programs.map((p) => [p.name, p]));
  for (const p of sample.programs) {
    const info = (app.status.programs || []).find((x) => x.name === p.name);
    const points = app.history.get(p.name) || [];
    points.push([now, p.rss_bytes, p.cpu_percent, info ? info.restarts : 0]);
    while (points.length && points[0][0] < now - HOUR) points.shift();
    app.history.set(p.name, points);
  }
  for (const tr of $('#programs tbody').rows) {
    const name = tr.dataset.program;
    if (!name) continue;
    const u = app.usage.get(name);
    tr.querySelector('td.mem').textContent = u ? bytes(u.rss_bytes) : '—';
    tr.querySelector('td.cpu').textContent = u && u.cpu_percent != null ? `${u.cpu_percent.toFixed(1)} %` : '—';
  }
  renderCharts();
}

const SVG = 'http://www.w3.org/2000/svg';
function sparkline(title, points, pick, format) {
  const box = el('div', { class: 'chart' });
  const values = points.map((p) => [p[0], pick(p)]).filter((p) => p[1] != null);
  const last = values.length ? values[values.length - 1][1] : null;
  const label = el('div', { class: 'label' });
  label.append(el('span', {}, title), el('span', {}, last == null ? '—' : format(last)));
  box.append(label);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 100 40');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${title}, last hour${last == null ? '' : ': now ' + format(last)}`);
  if (values.length < 2) {
    box.append(el('div', { class: 'collecting' }, 'collecting samples…'));
  } else {
    const now = Math.floor(Date.now() / 1000);
    const max = Math.max(...values.map((v) => v[1])) || 1;
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', values.map(([t, v]) =>
      `${(100 - (now - t) / HOUR * 100).toFixed(2)},${(38 - v / max * 36).toFixed(2)}`).join(' '));
    svg.append(line);
  }
  box.append(svg);
  return box;
}

function renderCharts() {
  const charts = $('#charts');
  if (!app.selected) { charts.replaceChildren(); return; }
  const points = app.history.get(app.selected) || [];
  charts.replaceChildren(
    sparkline('Memory', points, (p) => p[1], bytes),
    sparkline('CPU', points, (p) => p[2], (v) => `${v.toFixed(1)} %`),
    sparkline('Restarts', points, (p) => p[3], (v) => String(v)));
}

// ---- the log panel -------------------------------------------------------------------------

function stopLog() {
  if (app.logAbort) { app.logAbort.abort(); app.logAbort = null; }
}

function select(name) {
  app.selected = name;
  for (const tr of $('#programs tbody').rows) tr.classList.toggle('selected', tr.dataset.program === name);
  $('#log-title').textContent = `${name}: ${$('#log-stderr').checked ? 'stderr' : 'stdout'}`;
  renderCharts();
  followLog();
  // One column (a phone, a narrow window): the log is below the table; bring it up.
  if (window.matchMedia('(max-width: 1180px)').matches) $('#log').scrollIntoView({ block: 'start' });
}

function matches(line) {
  const q = $('#log-search').value.trim().toLowerCase();
  return !q || line.toLowerCase().includes(q);
}

function appendLine(box, text) {
  const div = el('div', {}, text);
  if (!matches(text)) div.hidden = true;
  box.append(div);
}

async function followLog() {
  stopLog();
  const box = $('#log-lines');
  box.replaceChildren();
  const name = app.selected;
  if (!name) return;
  const ctl = new AbortController();
  app.logAbort = ctl;
  const stderr = $('#log-stderr').checked;
  let res;
  try {
    res = await api('GET', `api/v1/logs/${encodeURIComponent(name)}?lines=200&follow=true&stderr=${stderr}`, undefined);
  } catch {
    return;
  }
  if (ctl.signal.aborted) return;
  if (!res.ok) { if (res.status !== 401) appendLine(box, `(${await errorOf(res)})`); return; }
  const reader = res.body.getReader();
  ctl.signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  const decoder = new TextDecoder('utf-8'); // invalid UTF-8 becomes U+FFFD
  let rest = '';
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch { break; }
    if (chunk.done || ctl.signal.aborted) break;
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    const parts = (rest + decoder.decode(chunk.value, { stream: true })).split('\n');
    rest = parts.pop();
    for (const line of parts) appendLine(box, cleanLine(line.replace(/\r$/, '')));
    while (box.children.length > MAX_LOG_LINES) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
}

function filterLog() {
  for (const div of $('#log-lines').children) div.hidden = !matches(div.textContent);
}

// ---- wiring --------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', async () => {
  $('#signin').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#reload').addEventListener('click', reloadConfig);
  $('#log-search').addEventListener('input', filterLog);
  $('#log-stderr').addEventListener('change', () => { if (app.selected) select(app.selected); });
  $('#programs').addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (!b || b.disabled) return;
    const tr = b.closest('tr');
    if (b.classList.contains('name')) select(tr.dataset.program);
    else if (b.dataset.action && !document.body.classList.contains('offline')) act(b.dataset.action, b.dataset.target, tr);
  });
  $('#programs').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && ev.target.classList.contains('scale')) {
      ev.preventDefault();
      act('scale', ev.target.dataset.target, ev.target.closest('tr'));
    }
  });
  // Uptimes move on between status events; this only redraws text, it asks nothing.
  setInterval(() => {
    for (const tr of $('#programs tbody').rows) {
      const p = (app.status.programs || []).find((x) => x.name === tr.dataset.program);
      if (p) tr.querySelector('td.uptime').textContent = duration(uptimeOf(p));
    }
  }, 1000);
  let res = null;
  try { res = await fetch('session', { credentials: 'same-origin', cache: 'no-store' }); } catch { /* offline */ }
  if (res && res.ok) showMain(await res.json());
  else showSignIn('');
});
