// Aegis dashboard. Every value that comes from a transaction is written with textContent, never
// as HTML, so a merchant called "<img src=x onerror=alert(1)>" is shown as those characters.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat();
  const POLL_FALLBACK_SECONDS = 2;

  const state = {
    mode: "live",       // "live", "paused" or seconds between polls
    source: null,       // EventSource while live
    timer: null,        // interval while polling
    baseline: null,     // `processed` when updates (re)started, for auto-stop
    lastProcessed: null,
    pushErrors: 0,
  };

  // ---- small helpers -------------------------------------------------------------------------

  async function getJson(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.className = "status" + (kind ? " " + kind : "");
  }

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = value;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function badge(row, action) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = "badge " + (["allow", "review", "block"].includes(action) ? action : "");
    span.textContent = action;
    td.appendChild(span);
    row.appendChild(td);
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString();
  const money = (v) => v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  // ---- rendering -----------------------------------------------------------------------------

  function renderStats(s) {
    $("t-processed").textContent = number.format(s.processed);
    $("t-flagged").textContent = number.format(s.flagged);
    $("t-rate").textContent = s.processed ? `${(100 * s.flag_rate).toFixed(2)}% of transactions` : "–";
    $("t-blocked").textContent = number.format(s.blocked);
    $("t-throughput").textContent = s.throughput_per_sec.toFixed(1);
    $("t-p99").textContent = s.p99_latency_us == null ? "–" : `${(s.p99_latency_us / 1000).toFixed(2)} ms`;
    $("empty").hidden = s.processed > 0;
    renderSeries(s.per_minute);
  }

  function renderRows(tableId, rows, withReasons) {
    const body = document.createElement("tbody");
    for (const t of rows) {
      const tr = document.createElement("tr");
      cell(tr, clock(t.received_at));
      cell(tr, t.txn_id, "mono");
      cell(tr, money(t.amount), "num");
      cell(tr, t.country);
      cell(tr, t.merchant);
      cell(tr, t.card_masked, "mono");
      cell(tr, t.score.toFixed(3), "num");
      badge(tr, t.action);
      if (withReasons) cell(tr, t.reasons.slice(0, 2).join("; "), "reasons");
      body.appendChild(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, "Nothing yet.", "muted");
      td.colSpan = withReasons ? 9 : 8;
      body.appendChild(tr);
    }
    $(tableId).tBodies[0].replaceWith(body);
  }

  function renderCountries(list) {
    const box = $("countries");
    const flagged = list.filter((c) => c.flagged > 0);
    const max = Math.max(1, ...flagged.map((c) => c.flagged));
    const rows = flagged.map((c) => {
      const row = document.createElement("div");
      row.className = "bar-row";
      const name = document.createElement("span");
      name.textContent = c.country;
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.title = `${c.flagged} flagged of ${c.transactions}`;
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(100 * c.flagged) / max}%`;
      bar.appendChild(fill);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = number.format(c.flagged);
      row.append(name, bar, count);
      return row;
    });
    if (!rows.length) {
      const none = document.createElement("p");
      none.className = "muted";
      none.textContent = "No flagged transactions yet.";
      rows.push(none);
    }
    box.replaceChildren(...rows);
  }

  function renderSeries(minutes) {
    const svg = $("series");
    const ns = "http://www.w3.org/2000/svg";
    const width = 600, height = 150, step = width / Math.max(1, minutes.length);
    const max = Math.max(1, ...minutes.map((m) => m.transactions));
    const shapes = [];
    minutes.forEach((m, i) => {
      for (const [value, cls] of [[m.transactions, "all"], [m.flagged, "flag"]]) {
        if (!value) continue;
        const h = (height * value) / max;
        const rect = document.createElementNS(ns, "rect");
        rect.setAttribute("class", cls);
        rect.setAttribute("x", (i * step + 1).toFixed(1));
        rect.setAttribute("width", Math.max(1, step - 2).toFixed(1));
        rect.setAttribute("y", (height - h).toFixed(1));
        rect.setAttribute("height", h.toFixed(1));
        const title = document.createElementNS(ns, "title");
        title.textContent = `${clock(m.minute)}: ${m.transactions} transactions, ${m.flagged} flagged`;
        rect.appendChild(title);
        shapes.push(rect);
      }
    });
    svg.replaceChildren(...shapes);
  }

  // ---- data flow -----------------------------------------------------------------------------

  async function refreshTables() {
    const action = $("action-filter").value;
    const recentUrl = "/api/transactions?limit=200" + (action ? `&action=${encodeURIComponent(action)}` : "");
    const [flagged, recent, countries] = await Promise.all([
      getJson("/api/flagged?limit=20"),
      getJson(recentUrl),
      getJson("/api/countries?limit=10"),
    ]);
    renderRows("flagged", flagged.transactions, true);
    renderRows("recent", recent.transactions, false);
    renderCountries(countries);
  }

  async function onStats(s) {
    if (state.baseline === null) state.baseline = s.processed;
    renderStats(s);
    if (s.processed !== state.lastProcessed) {
      state.lastProcessed = s.processed;
      await refreshTables();
    }
    const limit = Number($("autostop").value) || 0;
    const seen = s.processed - state.baseline;
    if (limit > 0 && seen >= limit) {
      stopUpdates();
      $("stopped-count").textContent = number.format(seen);
      $("stopped").hidden = false;
      setStatus("stopped");
    }
  }

  function report(error) {
    setStatus(`update failed: ${error.message}`, "error");
  }

  function stopUpdates() {
    if (state.source) state.source.close();
    if (state.timer) clearInterval(state.timer);
    state.source = null;
    state.timer = null;
  }

  function poll(seconds, label) {
    const tick = () => getJson("/api/stats").then(onStats).catch(report);
    tick();
    state.timer = setInterval(tick, seconds * 1000);
    setStatus(label || `every ${seconds} s`);
  }

  function listen() {
    if (!("EventSource" in window)) return poll(POLL_FALLBACK_SECONDS, `polling every ${POLL_FALLBACK_SECONDS} s`);
    const source = new EventSource("/api/events");
    state.source = source;
    source.addEventListener("stats", (e) => {
      state.pushErrors = 0;
      setStatus("live", "live");
      onStats(JSON.parse(e.data)).catch(report);
    });
    source.onerror = () => {
      // The browser reconnects by itself; after repeated failures fall back to polling.
      state.pushErrors += 1;
      if (state.pushErrors >= 3 && state.source === source) {
        source.close();
        state.source = null;
        poll(POLL_FALLBACK_SECONDS, `push unavailable, polling every ${POLL_FALLBACK_SECONDS} s`);
      } else {
        setStatus("reconnecting…");
      }
    };
  }

  function start() {
    stopUpdates();
    $("stopped").hidden = true;
    state.baseline = null;
    state.pushErrors = 0;
    const mode = $("refresh").value;
    if (mode === "paused") {
      setStatus("paused");
      // Show what is there once, then stay still.
      getJson("/api/stats")
        .then((s) => { renderStats(s); return refreshTables(); })
        .catch(report);
    } else if (mode === "live") {
      listen();
    } else {
      poll(Number(mode));
    }
  }

  $("refresh").addEventListener("change", start);
  $("resume").addEventListener("click", start);
  $("action-filter").addEventListener("change", () => refreshTables().catch(report));
  start();
})();
