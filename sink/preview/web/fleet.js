// Osprey fleet page: every camera of the fleet, the node holding its lease
// and a link to that node's live preview of it, from GET api/fleet (what
// `pipeline fleet status --json` prints). No dependencies.
'use strict';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// Every node runs the same file, so the same preview token opens the others.
const withToken = (u) => token ? u + (u.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : u;
const $ = (id) => document.getElementById(id);

// State shared with tests (tools/browser-test/fleet.mjs reads it).
const F = window.ospreyFleet = { loaded: false, enabled: false, self: '', cameras: 0, nodes: 0, updates: 0, error: '' };

// age formats a duration in nanoseconds as the CLI does: 312ms, 4.2s, 3m2s.
function age(ns) {
  if (ns === undefined) return '–';
  ns = Math.max(0, ns);
  const ms = ns / 1e6;
  if (ms < 1000) return Math.round(ms) + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  const s = Math.round(ms / 1000);
  return Math.floor(s / 60) + 'm' + (s % 60) + 's';
}

function cell(tr, content, cls) {
  const td = document.createElement('td');
  if (content instanceof Node) td.append(content); else td.textContent = content ?? '';
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  return a;
}

// previewHref is the holder's live page of a camera: relative on this node
// (it works through whatever address the browser used), else the holder's
// advertised URL.
function previewHref(c, self) {
  if (c.node === self) return withToken('./?stream=' + encodeURIComponent(c.id));
  return c.preview ? withToken(c.preview) : '';
}

function render(st) {
  const self = st.self || '';
  const unplaceable = new Set(st.unplaceable || []), waiting = new Set(st.waiting || []);
  const live = new Set((st.nodes || []).map((n) => n.node));
  $('self').textContent = self ? 'this node: ' + self : '';

  const cams = $('cameras').tBodies[0];
  cams.replaceChildren();
  for (const c of st.cameras || []) {
    const tr = document.createElement('tr');
    tr.dataset.camera = c.id;
    let state = 'unheld';
    if (c.node) state = live.has(c.node) ? 'running' : 'holder gone';
    else if (unplaceable.has(c.id)) state = 'unplaceable';
    else if (waiting.has(c.id)) state = 'waiting';
    cell(tr, c.id);
    cell(tr, state === 'waiting' ? 'waiting for capacity' : state, 'st-' + state.replace(' ', '-'));
    cell(tr, c.node || '–');
    cell(tr, c.node ? String(c.lease) : '–', 'num');
    cell(tr, c.node ? age(c.held_for_ns || 0) : '–', 'num');
    cell(tr, c.node ? age(c.renew_age_ns || 0) + ' ago' : '–', 'num');
    cell(tr, (c.requires || []).join(', ') || '–');
    const href = previewHref(c, self);
    cell(tr, href ? link(href, c.node === self ? 'watch here' : 'watch on ' + c.node) : '–');
    cams.append(tr);
  }
  const notes = [];
  if (unplaceable.size) notes.push('Unplaceable (no live node offers their requires): ' + [...unplaceable].join(', '));
  if (waiting.size) notes.push('Waiting for capacity: ' + [...waiting].join(', '));
  $('notes').textContent = notes.join('. ');

  const nodes = $('nodes').tBodies[0];
  nodes.replaceChildren();
  for (const n of st.nodes || []) {
    const tr = document.createElement('tr');
    tr.dataset.node = n.node;
    if (n.node === self) tr.className = 'self';
    cell(tr, n.node);
    cell(tr, n.capacity > 0 ? String(n.capacity) : '–', 'num');
    cell(tr, String(n.held), 'num');
    cell(tr, (n.labels || []).join(', ') || '–');
    cell(tr, age(n.beat_age_ns || 0) + ' ago', 'num');
    cell(tr, (n.host || '') + (n.pid ? ' (pid ' + n.pid + ')' : ''));
    const ui = n.node === self ? withToken('./') : (n.ui ? withToken(n.ui + '/') : '');
    cell(tr, ui ? link(ui, n.node === self ? 'this node' : n.ui) : 'not advertised');
    nodes.append(tr);
  }
  F.cameras = (st.cameras || []).length;
  F.nodes = (st.nodes || []).length;
}

async function refresh() {
  const r = await fetch(withToken('api/fleet'), { cache: 'no-store', headers: token ? { Authorization: 'Bearer ' + token } : {} });
  const body = await r.json().catch(() => ({ error: 'api/fleet: HTTP ' + r.status }));
  F.enabled = !!body.enabled;
  $('off').hidden = F.enabled;
  $('fleetCameras').hidden = $('fleetNodes').hidden = !F.enabled;
  if (!r.ok || body.error) {
    F.error = body.error || ('api/fleet: HTTP ' + r.status);
    $('state').textContent = 'cannot read the fleet: ' + F.error;
  } else if (F.enabled) {
    F.self = body.status.self || '';
    render(body.status);
    F.error = '';
    $('state').textContent = 'updated ' + new Date().toLocaleTimeString();
  } else {
    $('state').textContent = '';
  }
  F.loaded = true;
  F.updates++;
}

function tick() {
  refresh().catch((e) => { F.error = String(e); F.loaded = true; $('state').textContent = 'error: ' + e.message; })
    .finally(() => { if (F.enabled || !F.loaded) setTimeout(tick, 2000); });
}
$('live').href = withToken('./');
tick();
