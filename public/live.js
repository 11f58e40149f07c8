// The live page of `batchcast serve`: one LiveSnapshot a second arrives over Server-Sent Events
// (/live/events, a backlog of up to 120 s first); tiles show the latest, uPlot charts the last 120 s.
// Plain script, no build step: uPlot is the global of its IIFE build, loaded before this file.
'use strict';

(() => {
  const WINDOW_S = 120; // seconds the charts keep, as many as the server's backlog
  const CHART_HEIGHT = 220;
  const STALE_MS = 5000; // no snapshot for this long while "connected": say so

  const $ = (id) => document.getElementById(id);
  const show = (id, text) => { $(id).textContent = text; };

  // Formatting: numbers an operator reads at a glance; '–' for what is not known (null, NaN).
  const known = (n) => typeof n === 'number' && Number.isFinite(n);
  const int = (n) => (known(n) ? Math.round(n).toLocaleString('en-US') : '–');
  const ms = (n) => (!known(n) ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  function bytes(n) {
    if (!known(n)) return '–';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${+n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`; // 91.4 kB, 80 kB
  }
  const compact = (n) => (Math.abs(n) >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : Math.abs(n) >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(2)}`);

  // The chart data: shared columns (uPlot wants [x, y1, y2…]); time in seconds, as uPlot's time scale expects.
  const columns = { t: [], messages: [], frames: [], wire: [], p50: [], p99: [], util: [], loop: [] };
  const all = Object.values(columns);

  // Dark-theme axes; the y scale starts at 0 so a quiet second does not look like a cliff.
  const axis = (extra) => ({ stroke: '#8a97a6', grid: { stroke: '#27313c', width: 1 }, ticks: { stroke: '#27313c', width: 1 }, ...extra });
  const fromZero = (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1];
  const bytesFromZero = (_u, _min, max) => [0, Math.max(max * 1.15, 1000)]; // never ticks of a fraction of a byte
  // Time ticks on whole seconds (no ":30.500"), read as a wall clock.
  const clock = (t) => new Date(t * 1000).toLocaleTimeString('en-GB');
  const xAxis = { incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], space: 70, size: 32 };
  const line = (label, stroke, format, extra) => ({ label, stroke, width: 2, points: { show: false }, value: (_u, v) => (v == null ? '–' : format(v)), ...extra });
  const each = (format) => (_u, splits) => splits.map((v) => (v == null ? '' : format(v)));

  function chart(id, series, data, scales, axes) {
    const root = $(id);
    const plot = new uPlot({
      width: Math.max(200, root.clientWidth), height: CHART_HEIGHT,
      scales: { x: { time: true }, ...scales },
      series: [{ label: 'time', value: (_u, t) => (t == null ? '–' : clock(t)) }, ...series],
      axes: [axis({ ...xAxis, values: each(clock) }), ...axes],
      cursor: { drag: { x: false, y: false } }, // no zoom: the window slides every second anyway
      legend: { live: true },
    }, data, root);
    // Follow the window (and scrollbars, panes…): the figure's width is set by the grid, never by the chart.
    new ResizeObserver((entries) => {
      const width = Math.floor(entries[0].contentRect.width);
      if (width > 0 && width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
    }).observe(root.parentElement);
    return plot;
  }

  const c = columns;
  const charts = [
    chart('c-rates', [line('messages/s', '#4fa3ff', int), line('frames/s', '#f5a524', int)], [c.t, c.messages, c.frames],
      { y: { range: fromZero } }, [axis({ values: each(compact), size: 56 })]),
    chart('c-wire', [line('wire bytes/s', '#41c980', (v) => `${bytes(v)}/s`, { fill: 'rgba(65,201,128,0.12)' })],
      [c.t, c.wire], { y: { range: bytesFromZero } }, [axis({ values: each(bytes), size: 70 })]),
    chart('c-delay', [line('p50 ms', '#4fa3ff', ms), line('p99 ms', '#e5534b', ms)], [c.t, c.p50, c.p99],
      { y: { range: fromZero } }, [axis({ values: each((v) => `${+v.toFixed(2)}`), size: 56 })]),
    chart('c-load', [line('pool utilization', '#b083f0', (v) => `${Math.round(v)}%`, { scale: '%' }), line('event-loop p99 ms', '#f5a524', ms, { scale: 'ms' })],
      [c.t, c.util, c.loop],
      { '%': { range: [0, 100] }, ms: { range: fromZero } },
      [axis({ scale: '%', values: each((v) => `${v}%`), size: 56 }), axis({ scale: 'ms', side: 1, values: each((v) => `${+v.toFixed(1)}`), size: 56, grid: { show: false } })]),
  ];
  // Redraw; the legends show the newest values unless the cursor is over a chart (then: the values under it).
  const redraw = () => charts.forEach((plot) => {
    plot.setData(plot.data);
    if (!(plot.cursor.left >= 0)) plot.setLegend({ idx: plot.data[0].length - 1 }, false);
  });

  // Test hooks (and handy in the console): what arrived, and what the first chart holds.
  const live = { snapshots: 0, last: null, points: () => charts[0].data[0].length, charts };
  window.batchcastLive = live;

  function add(s) {
    const t = s.time / 1000;
    const previous = c.t.length > 0 ? c.t[c.t.length - 1] : null;
    // A reconnect replays the backlog: keep only what is newer than what we have.
    if (previous !== null && t <= previous) return false;
    // A hole (page was disconnected): a null row makes uPlot break the lines instead of bridging them.
    if (previous !== null && t - previous > 2.5) all.forEach((column, i) => column.push(i === 0 ? previous + 1 : null));
    c.t.push(t);
    c.messages.push(s.messagesPerSecond);
    c.frames.push(s.framesPerSecond);
    c.wire.push(s.wireBytesPerSecond);
    c.p50.push(s.delayMs.batches > 0 ? s.delayMs.p50 : null); // no batch this second: no delay to draw
    c.p99.push(s.delayMs.batches > 0 ? s.delayMs.p99 : null);
    c.util.push(s.pool.utilization * 100);
    c.loop.push(s.eventLoopDelayMs.p99);
    while (c.t.length > 0 && c.t[0] <= t - WINDOW_S) all.forEach((column) => column.shift());
    return true;
  }

  function tiles(s) {
    show('v-messages', int(s.messagesPerSecond));
    show('v-frames', int(s.framesPerSecond));
    show('v-wire', `${bytes(s.wireBytesPerSecond)}/s`);
    show('v-ratio', known(s.compressionRatio) ? `${s.compressionRatio.toFixed(2)}×` : '–');
    show('v-connections', int(s.connections));
    show('s-connections', `${int(s.subscriptions)} subscriptions`);
    const delay = s.delayMs;
    show('v-delay', delay.batches > 0 ? `${ms(delay.p50)} / ${ms(delay.p99)}` : '–');
    show('s-delay', `p50 / p99 ms · ${int(delay.batches)} batches`);
    show('v-pool', `${Math.round(s.pool.utilization * 100)}%`);
    show('s-pool', `queue ${int(s.pool.queue)} · ${int(s.pool.threads)} thread${s.pool.threads === 1 ? '' : 's'}`);
    show('v-loop', ms(s.eventLoopDelayMs.p99));
    show('s-loop', `p99 ms · p50 ${ms(s.eventLoopDelayMs.p50)} · max ${ms(s.eventLoopDelayMs.max)}`);
    const slow = s.slowClients;
    show('v-slow', int(slow.batchesSkipped));
    show('s-slow', `skipped/s · closed ${int(slow.closed)} · lagging ${int(slow.lagging)}`);
    settings(s.settings);
  }

  function settings(v) {
    const parts = [
      ['preset', v.preset], ['codec', v.codec], ['batch size', int(v.batchSize)], ['batch delay', `${ms(v.batchDelayMs)} ms`],
      ['compression threshold', bytes(v.compressionThreshold)], ['level', v.compressionLevel], ['adaptive', v.adaptive ? 'on' : 'off'],
    ];
    // Built with text nodes: nothing from the wire is parsed as HTML.
    const el = $('settings');
    el.replaceChildren();
    parts.forEach(([name, value], i) => {
      el.append(`${i === 0 ? '' : ' · '}${name} `);
      const b = document.createElement('b');
      b.textContent = String(value);
      el.append(b);
    });
  }

  // Connection status: live, reconnecting (EventSource retries by itself), stale (open but silent).
  let lastArrival = 0;
  function status(state) {
    const el = $('status');
    if (el.className !== `status ${state}`) {
      el.className = `status ${state}`;
      el.textContent = state;
    }
  }

  let source = null;
  function connect() {
    source = new EventSource('/live/events');
    source.onopen = () => status('live');
    source.onmessage = (event) => {
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch {
        return; // not a snapshot: nothing to draw
      }
      lastArrival = Date.now();
      status('live');
      if (!add(snapshot)) return;
      live.snapshots++;
      live.last = snapshot;
      tiles(snapshot);
      redraw();
    };
    source.onerror = () => {
      // CONNECTING: the browser retries on its own (retry: 2000 from the server). CLOSED (e.g. an HTTP error): it
      // gave up, so we start a new one ourselves a little later.
      status('reconnecting');
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    };
  }
  connect();

  // The backlog and then a snapshot a second: silence for STALE_MS on an open stream means a stuck server.
  setInterval(() => {
    if (source.readyState === EventSource.OPEN && lastArrival > 0 && Date.now() - lastArrival > STALE_MS) status('stale');
  }, 1000);
})();
