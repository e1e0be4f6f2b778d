// Osprey review page: the events the preview sink kept, filtered, each with
// its snapshot and (once the recorder reports it) its clip; counts per zone
// and line per hour. No dependencies.
'use strict';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const withToken = (u) => token ? u + (u.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : u;
const $ = (id) => document.getElementById(id);
const form = $('filters');

// State shared with tests (tools/browser-test/review.mjs reads it).
const R = window.ospreyReview = { loaded: false, rows: 0, clips: 0, series: 0, error: '' };

const TYPES = ['track.started', 'track.ended', 'zone.entered', 'zone.left', 'zone.loitering',
  'line.crossed', 'source.up', 'source.down', 'clip.ready'];
const COLORS = ['#4cf', '#fc4', '#f6a', '#7e7', '#c9f', '#f84'];

async function api(path) {
  const r = await fetch(withToken(path), { cache: 'no-store', headers: token ? { Authorization: 'Bearer ' + token } : {} });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status + ' ' + (await r.text()));
  return r.json();
}

function query() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) {
    if (!v) continue;
    // datetime-local is the browser's local time; the API wants RFC 3339.
    q.set(k, (k === 'since' || k === 'until') ? new Date(v).toISOString().replace(/\.\d+Z$/, 'Z') : v);
  }
  return q.toString();
}

function cell(tr, text) {
  const td = document.createElement('td');
  if (text instanceof Node) td.append(text); else td.textContent = text ?? '';
  tr.append(td);
  return td;
}

function play(e) {
  const v = $('player');
  v.hidden = false;
  v.src = withToken(e.clip_url);
  $('playing').textContent = `${e.stream} ${e.type} ${new Date(e.time).toLocaleString()} (${(e.clip_seconds || 0).toFixed(1)} s)`;
  v.play().catch((err) => { R.error = 'play: ' + err.message; });
}

function renderEvents(list) {
  const body = $('events').tBodies[0];
  body.replaceChildren();
  let clips = 0;
  for (const e of list) {
    const tr = document.createElement('tr');
    tr.dataset.id = e.id;
    cell(tr, new Date(e.time).toLocaleString());
    cell(tr, e.stream);
    cell(tr, e.type);
    cell(tr, e.label);
    cell(tr, e.zone || (e.line ? e.line + (e.direction ? ' ' + e.direction : '') : ''));
    cell(tr, e.track_id || '');
    if (e.snapshot_url) {
      const img = new Image();
      img.src = withToken(e.snapshot_url);
      img.alt = e.type + ' snapshot';
      img.loading = 'lazy';
      img.onclick = () => img.classList.toggle('big');
      cell(tr, img);
    } else cell(tr, '');
    if (e.clip_url) {
      const b = document.createElement('button');
      b.textContent = '▶ ' + (e.clip_seconds || 0).toFixed(0) + ' s';
      b.className = 'play';
      b.onclick = () => play(e);
      cell(tr, b);
      clips++;
    } else cell(tr, '');
    body.append(tr);
  }
  R.rows = list.length;
  R.clips = clips;
}

function renderHourly(h) {
  const svg = $('hourly'), W = 380, H = 180, pad = 24;
  svg.replaceChildren();
  const legend = $('hlegend');
  legend.replaceChildren();
  R.series = h.series.length;
  if (!h.hours.length) return;
  const max = Math.max(1, ...h.series.flatMap((s) => s.counts));
  const n = h.hours.length, groupW = (W - pad) / n, barW = Math.max(1, groupW / (h.series.length + 1));
  const ns = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, text) => {
    const x = document.createElementNS(ns, name);
    for (const k in attrs) x.setAttribute(k, attrs[k]);
    if (text !== undefined) x.textContent = text;
    svg.append(x);
    return x;
  };
  el('text', { x: 2, y: 12, fill: '#aaa', 'font-size': 10 }, String(max));
  h.series.forEach((s, i) => {
    s.counts.forEach((c, j) => {
      const bh = (H - 2 * pad) * c / max;
      const r = el('rect', { x: pad + j * groupW + i * barW, y: H - pad - bh, width: barW - 1, height: bh, fill: COLORS[i % COLORS.length] });
      r.append(Object.assign(document.createElementNS(ns, 'title'), { textContent: `${s.name}: ${c}` }));
    });
    const span = document.createElement('span');
    span.innerHTML = `<i style="background:${COLORS[i % COLORS.length]}"></i>`;
    span.append(`${s.kind} ${s.name} (${s.stream})`);
    legend.append(span);
  });
  const step = Math.ceil(n / 6);
  h.hours.forEach((t, j) => {
    if (j % step) return;
    el('text', { x: pad + j * groupW, y: H - 8, fill: '#aaa', 'font-size': 10 },
      new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  });
}

async function refresh() {
  try {
    const q = query();
    const [list, hourly] = await Promise.all([api('api/review/events?' + q), api('api/review/hourly?' + q)]);
    renderEvents(list);
    renderHourly(hourly);
    const streams = form.elements.stream;
    for (const s of new Set(list.map((e) => e.stream))) {
      if (![...streams.options].some((o) => o.value === s)) streams.add(new Option(s, s));
    }
    $('state').textContent = `${list.length} events`;
    R.loaded = true;
  } catch (err) {
    R.error = err.message;
    $('state').textContent = err.message;
  }
}

for (const t of TYPES) form.elements.type.add(new Option(t, t));
for (const k of ['stream', 'type', 'label', 'zone']) if (params.get(k)) form.elements[k].value = params.get(k);
$('live').href = withToken('./');
form.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
refresh();
setInterval(() => { if ($('player').paused) refresh(); }, 5000);
