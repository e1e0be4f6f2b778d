// Osprey live preview page. No dependencies: plain WebRTC (WHEP), a canvas
// overlay drawn per decoded video frame, and a stats panel.
'use strict';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const authHeaders = token ? { Authorization: 'Bearer ' + token } : {};
const withToken = (u) => token ? u + (u.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : u;

const $ = (id) => document.getElementById(id);
const video = $('video'), canvas = $('overlayCanvas'), ctx = canvas.getContext('2d');

// State shared with tests (tools/browser-test reads window.ospreyPreview).
const P = window.ospreyPreview = {
  stream: '', connected: false, metaMessages: 0, framesSeen: 0, matched: 0, unmatched: 0,
  boxesDrawn: 0, motionDrawn: 0, latenciesMs: [], overlays: null, error: '',
};
if (params.get('motion') === '1') $('motion').checked = true;

let pc = null, sessionURL = '';
const metaByRTP = new Map(); // RTP timestamp -> frame metadata, oldest first
const META_KEEP = 300;

async function api(path) {
  const r = await fetch(withToken(path), { headers: authHeaders, cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

async function loadStreams() {
  const list = await api('api/streams');
  const sel = $('stream');
  sel.innerHTML = '';
  for (const s of list) {
    const o = document.createElement('option');
    o.value = o.textContent = s.id;
    sel.appendChild(o);
  }
  const want = params.get('stream');
  if (want && list.some((s) => s.id === want)) sel.value = want;
  return sel.value;
}

function setState(s) { $('state').textContent = s; }

async function connect(stream) {
  await disconnect();
  P.stream = stream;
  metaByRTP.clear();
  $('mjpeg').href = withToken('mjpeg/' + encodeURIComponent(stream));
  if (!window.RTCPeerConnection) { return showMJPEG(stream); }
  setState('connecting…');
  pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const dc = pc.createDataChannel('meta');
  dc.onmessage = (e) => onMeta(JSON.parse(e.data));
  pc.ontrack = (e) => {
    // Live preview: ask for the smallest jitter buffer the network allows.
    if ('jitterBufferTarget' in e.receiver) e.receiver.jitterBufferTarget = 0;
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
  };
  pc.onconnectionstatechange = () => {
    setState(pc.connectionState);
    P.connected = pc.connectionState === 'connected';
  };
  await pc.setLocalDescription(await pc.createOffer());
  // Non-trickle WHEP: send the offer once every candidate is in it.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 2000);
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } };
  });
  const whep = new URL('whep/' + encodeURIComponent(stream), location.href);
  const r = await fetch(withToken(whep.pathname), {
    method: 'POST', body: pc.localDescription.sdp,
    headers: Object.assign({ 'Content-Type': 'application/sdp' }, authHeaders),
  });
  if (r.status !== 201) throw new Error('WHEP: HTTP ' + r.status + ' ' + await r.text());
  sessionURL = new URL(r.headers.get('Location') || '', whep).pathname;
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  video.requestVideoFrameCallback(onVideoFrame);
}

async function disconnect() {
  if (pc) { pc.close(); pc = null; }
  if (sessionURL) {
    const u = sessionURL; sessionURL = '';
    fetch(withToken(u), { method: 'DELETE', headers: authHeaders }).catch(() => {});
  }
}

function showMJPEG(stream) {
  video.hidden = true; canvas.hidden = true;
  const img = $('mjpegImg');
  img.hidden = false;
  img.src = withToken('mjpeg/' + encodeURIComponent(stream));
  setState('MJPEG (no WebRTC in this browser)');
}

function onMeta(m) {
  if (m.type === 'overlays') { P.overlays = m; return; }
  if (m.type !== 'frame') return;
  P.metaMessages++;
  metaByRTP.set(m.rtp, m);
  while (metaByRTP.size > META_KEEP) metaByRTP.delete(metaByRTP.keys().next().value);
}

// Called once per decoded video frame: draw the metadata of exactly this
// frame, found by its RTP timestamp, never "the latest metadata".
function onVideoFrame(now, md) {
  P.framesSeen++;
  const m = md.rtpTimestamp !== undefined ? metaByRTP.get(md.rtpTimestamp) : undefined;
  if (m) {
    P.matched++;
    // Capture (server wall clock) to the frame being ready for display after
    // decode (browser wall clock): exact when both run on one machine.
    const shown = performance.timeOrigin + (md.presentationTime || now);
    P.latenciesMs.push(shown - m.captured_ms);
    if (P.latenciesMs.length > 2000) P.latenciesMs.shift();
    draw(m);
  } else {
    P.unmatched++;
  }
  video.requestVideoFrameCallback(onVideoFrame);
}

function draw(m) {
  const w = video.videoWidth || m.enc_width, h = video.videoHeight || m.enc_height;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  ctx.clearRect(0, 0, w, h);
  if (!$('overlay').checked) return;
  ctx.lineWidth = Math.max(2, w / 400);
  ctx.font = Math.round(Math.max(12, w / 60)) + 'px sans-serif';
  const ov = P.overlays;
  if (ov) {
    ctx.strokeStyle = ctx.fillStyle = '#ffc107';
    for (const z of ov.zones) {
      ctx.beginPath();
      z.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x * w, y * h) : ctx.moveTo(x * w, y * h)));
      ctx.closePath(); ctx.stroke();
      if (z.polygon.length) ctx.fillText(z.name, z.polygon[0][0] * w + 4, z.polygon[0][1] * h - 4);
    }
    ctx.strokeStyle = ctx.fillStyle = '#e91e63';
    for (const l of ov.lines) {
      ctx.beginPath(); ctx.moveTo(l.from[0] * w, l.from[1] * h); ctx.lineTo(l.to[0] * w, l.to[1] * h); ctx.stroke();
      ctx.fillText(l.name, l.from[0] * w + 4, l.from[1] * h - 4);
    }
  }
  const sx = w / m.width, sy = h / m.height;
  if ($('motion').checked) drawMotion(m, sx, sy, h);
  ctx.strokeStyle = ctx.fillStyle = '#00e676';
  for (const b of m.boxes) {
    const [x, y, bw, bh] = b.box;
    ctx.strokeRect(x * sx, y * sy, bw * sx, bh * sy);
    const label = (b.id ? '#' + b.id + ' ' : '') + b.label + ' ' + Math.round(b.score * 100) + '%';
    ctx.fillText(label, x * sx, Math.max(12, y * sy - 4));
    if (b.attrs) ctx.fillText(b.attrs, x * sx, (y + bh) * sy + 12);
    for (const c of b.children || []) {
      ctx.strokeStyle = '#ffeb3b';
      ctx.strokeRect(c.box[0] * sx, c.box[1] * sy, c.box[2] * sx, c.box[3] * sy);
      ctx.strokeStyle = '#00e676';
    }
    P.boxesDrawn++;
  }
}

// drawMotion shows the motion gate's view: motion boxes thin, the detector's
// regions thick, and "skipped" when the detector did not run on the frame.
function drawMotion(m, sx, sy, h) {
  const lw = ctx.lineWidth;
  ctx.strokeStyle = '#ff7043'; ctx.lineWidth = Math.max(1, lw / 2);
  for (const [x, y, bw, bh] of m.motion || []) { ctx.strokeRect(x * sx, y * sy, bw * sx, bh * sy); P.motionDrawn++; }
  ctx.strokeStyle = ctx.fillStyle = '#29b6f6'; ctx.lineWidth = lw * 1.5;
  for (const [x, y, bw, bh] of m.regions || []) { ctx.strokeRect(x * sx, y * sy, bw * sx, bh * sy); P.motionDrawn++; }
  if (m.skipped) ctx.fillText('skipped', 8, h - 10);
  ctx.lineWidth = lw;
}

// ---- stats panel ----
const series = new Map(); // name -> [values], one per second
const colors = ['#4fc3f7', '#ffb74d', '#81c784', '#e57373', '#ba68c8', '#fff176', '#90a4ae', '#f06292'];

function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function push(name, v) {
  if (!Number.isFinite(v)) return;
  if (!series.has(name)) series.set(name, []);
  const a = series.get(name);
  a.push(v);
  if (a.length > 60) a.shift();
}

let lastLatIdx = 0;
async function tick() {
  if (pc) {
    const st = await pc.getStats();
    st.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        $('fps').textContent = (r.framesPerSecond || 0).toFixed(1);
        $('decoded').textContent = r.framesDecoded;
        P.framesDecoded = r.framesDecoded;
      }
    });
  }
  const recent = P.latenciesMs.slice(lastLatIdx);
  lastLatIdx = P.latenciesMs.length;
  const p50 = pct(P.latenciesMs.slice(-300), 0.5), p99 = pct(P.latenciesMs.slice(-300), 0.99);
  $('g2g').textContent = Number.isFinite(p50) ? p50.toFixed(0) + ' / ' + p99.toFixed(0) + ' ms' : '–';
  $('matched').textContent = P.matched + ' of ' + P.framesSeen + ' frames';
  push('glass-to-glass', pct(recent, 0.5));
  try {
    const s = await api('api/stats');
    const mine = s.preview[P.stream] || {};
    $('enc').textContent = mine.encode_mean_ms !== undefined ? mine.encode_mean_ms.toFixed(1) + ' ms' : '–';
    push('capture→preview', mine.capture_to_sink_mean_ms);
    push('encode', mine.encode_mean_ms);
    const drops = {};
    for (const [k, v] of Object.entries(mine.drops || {})) drops['preview/' + k] = v;
    const pl = s.pipeline || {};
    for (const [k, v] of Object.entries(pl.drops || {})) drops[k] = v;
    for (const [k, v] of Object.entries(pl.stage_ms || {})) push(k, v);
    if (pl.fps && pl.fps[P.stream] !== undefined) $('pfps').textContent = pl.fps[P.stream].toFixed(1);
    $('drops').innerHTML = Object.keys(drops).sort().map((k) => '<tr><th>' + esc(k) + '</th><td>' + drops[k] + '</td></tr>').join('') || '<tr><th>none</th></tr>';
  } catch (e) { P.error = String(e); }
  drawChart();
}

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c])); }

function drawChart() {
  const c = $('chart'), g = c.getContext('2d'), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  let maxV = 1;
  for (const a of series.values()) for (const v of a) maxV = Math.max(maxV, v);
  maxV *= 1.1;
  g.strokeStyle = '#333'; g.fillStyle = '#888'; g.font = '10px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = H - (i / 4) * (H - 10);
    g.beginPath(); g.moveTo(0, y); g.lineTo(W, y); g.stroke();
    g.fillText((maxV * i / 4).toFixed(0), 2, y - 2);
  }
  let i = 0;
  const legend = [];
  for (const [name, a] of series) {
    const col = colors[i++ % colors.length];
    g.strokeStyle = col; g.lineWidth = 1.5; g.beginPath();
    a.forEach((v, j) => {
      const x = W - (a.length - 1 - j) * (W / 59), y = H - (v / maxV) * (H - 10);
      j ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    legend.push('<span><i style="background:' + col + '"></i>' + esc(name) + ' ' + a[a.length - 1].toFixed(1) + '</span>');
  }
  $('legend').innerHTML = legend.join('');
}

$('stream').onchange = (e) => connect(e.target.value).catch(fail);
$('overlay').onchange = () => { if (!$('overlay').checked) ctx.clearRect(0, 0, canvas.width, canvas.height); };
window.addEventListener('pagehide', disconnect);
function fail(e) { P.error = String(e); setState('error: ' + e.message); }

(async () => {
  try {
    const s = await loadStreams();
    if (!s) { setState('no streams yet: reload when the pipeline runs'); return; }
    await connect(s);
  } catch (e) { fail(e); }
  setInterval(() => tick().catch(fail), 1000);
})();

// The review page exists only with sinks.preview.review set: show its link then.
fetch(withToken('review'), { method: 'HEAD', headers: authHeaders }).then((r) => {
  if (r.ok) { $('reviewLink').href = withToken('review'); $('reviewLink').hidden = false; }
}).catch(() => {});

// The fleet page lists the fleet's cameras; its link shows on fleet nodes only.
fetch(withToken('api/fleet'), { headers: authHeaders, cache: 'no-store' }).then((r) => r.json()).then((f) => {
  if (f.enabled) { $('fleetLink').href = withToken('fleet'); $('fleetLink').hidden = false; }
}).catch(() => {});
