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
    lastVerdicts: null,
    pushErrors: 0,
  };

  // The API token for writing (labels), asked once and kept for this tab only: sent as a
  // Bearer header, never as a cookie, so another site cannot make the browser send it.
  const TOKEN_KEY = "aegis-api-token";

  async function postJson(url, body) {
    const send = () => {
      const headers = { "content-type": "application/json", accept: "application/json" };
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.authorization = `Bearer ${token}`;
      return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
    };
    let response = await send();
    if (response.status === 401) {
      const token = window.prompt("This server requires its API token to record verdicts:");
      if (!token) throw new Error("no API token given");
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      response = await send();
      if (response.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    }
    const json = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((json.error && json.error.message) || `HTTP ${response.status}`);
    return json;
  }

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
    $("t-p99-answer").textContent = s.p99_answer_us == null ? "–" : `≤ ${(s.p99_answer_us / 1000).toFixed(2)} ms`;
    $("empty").hidden = s.processed > 0;
    $("t-confirmed").textContent = number.format(s.confirmed_fraud);
    $("t-precision").textContent = s.review_precision == null ? "–" : `${(100 * s.review_precision).toFixed(1)}%`;
    $("t-reviewed").textContent = s.reviewed_flags ? `of ${number.format(s.reviewed_flags)} reviewed flags` : "none reviewed yet";
    $("t-queue").textContent = number.format(s.open_queue);
    renderSeries(s.per_minute);
  }

  function txnLink(row, id) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = "#case=" + encodeURIComponent(id);
    a.className = "mono";
    a.textContent = id;
    a.addEventListener("click", (e) => { e.preventDefault(); openCase(id).catch(report); });
    td.appendChild(a);
    row.appendChild(td);
  }

  // One transaction's cells, as every table shows them; `extra` adds the table's own columns.
  function transactionRow(t, time, extra) {
    const tr = document.createElement("tr");
    tr.dataset.txn = t.txn_id;
    cell(tr, time);
    txnLink(tr, t.txn_id);
    cell(tr, money(t.amount), "num");
    cell(tr, t.country);
    cell(tr, t.merchant);
    cell(tr, t.card_masked, "mono");
    cell(tr, t.score.toFixed(3), "num");
    badge(tr, t.action);
    if (extra) extra(tr);
    return tr;
  }

  // Replaces a table's body with `rows`, or one row saying `empty`.
  function fillTable(tableId, rows, empty) {
    const body = document.createElement("tbody");
    body.append(...rows);
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, empty, "muted");
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      body.appendChild(tr);
    }
    $(tableId).tBodies[0].replaceWith(body);
  }

  const topReasons = (t) => (tr) => cell(tr, t.reasons.slice(0, 2).join("; "), "reasons");

  function renderRows(tableId, rows, withReasons) {
    const trs = rows.map((t) => transactionRow(t, clock(t.received_at), withReasons ? topReasons(t) : null));
    fillTable(tableId, trs, "Nothing yet.");
  }

  function renderReview(rows) {
    const trs = rows.map((t) => transactionRow(t, clock(t.received_at), (tr) => {
      topReasons(t)(tr);
      const td = document.createElement("td");
      for (const [label, text] of [["fraud", "Fraud"], ["legit", "Legitimate"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "verdict " + label;
        button.textContent = text;
        button.addEventListener("click", () => verdict(t.txn_id, label, tr).catch(report));
        td.appendChild(button);
      }
      tr.appendChild(td);
    }));
    fillTable("review", trs, "Nothing to review.");
  }

  async function verdict(txnId, label, row) {
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      await postJson("/labels", { txn_id: txnId, label, source: "analyst" });
      row.remove();
      $("review-message").textContent = `${txnId} labelled ${label === "fraud" ? "fraud" : "legitimate"}.`;
      if ($("case-id").textContent === txnId) await openCase(txnId);
    } catch (e) {
      for (const b of row.querySelectorAll("button")) b.disabled = false;
      $("review-message").textContent = `Could not label ${txnId}: ${e.message}`;
    }
  }

  async function openCase(txnId) {
    const c = await getJson(`/api/transactions/${encodeURIComponent(txnId)}`);
    const t = c.transaction;
    $("case-id").textContent = t.txn_id;
    const facts = [
      ["Time", t.timestamp], ["Amount", money(t.amount)], ["Card", t.card_masked], ["Merchant", t.merchant],
      ["Category", t.merchant_category || "–"], ["Country", t.country], ["Action", t.action],
      ["Score", t.score.toFixed(3)],
      ["Fraud probability", t.fraud_probability == null ? "–" : t.fraud_probability.toFixed(3)],
      ["Isolation Forest", t.if_score.toFixed(3)], ["Autoencoder error", t.ae_mse.toFixed(3)],
      ["Rules matched", t.rules.length ? t.rules.join(", ") : "none"],
      ["Shadow model", t.shadow ? `${t.shadow.score.toFixed(3)} → ${t.shadow.action} (${t.shadow.model_version})` : "–"],
      ["Verdict", t.verdict || "none yet"], ["Model", t.model_version],
    ];
    // The team's declared fields (PII already tokens), after the core ones.
    if (t.fields) {
      for (const [name, v] of Object.entries(typeof t.fields === "string" ? JSON.parse(t.fields) : t.fields)) {
        facts.push([name, v && typeof v === "object" ? `${v.lat}, ${v.lon}` : String(v)]);
      }
    }
    $("case-facts").replaceChildren(...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }));
    const items = (list, empty) => (list.length ? list : [empty]).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    });
    $("case-reasons").replaceChildren(...items(t.reasons, "none (allowed)"));
    $("case-labels").replaceChildren(...items(
      c.labels.map((l) => `${l.label} from ${l.source}, reported ${l.reported_at}${l.note ? ": " + l.note : ""}`),
      "no labels yet"));
    // Other cards that used the same device, IP or e-mail in the day before (declared entity
    // fields); each opens as a case.
    const links = (c.links || []).map((l) => {
      const li = document.createElement("li");
      li.textContent = `${l.field} ${l.value} used by ${l.cards} card${l.cards === 1 ? "" : "s"} in 24 h, ` +
        `${l.fraud_cards} with confirmed fraud`;
      for (const t of l.transactions) {
        const a = document.createElement("a");
        a.href = "#";
        a.className = "mono link";
        a.textContent = ` ${t.card_masked}${t.verdict ? " (" + t.verdict + ")" : ""}`;
        a.addEventListener("click", (e) => {
          e.preventDefault();
          openCase(t.txn_id).catch(report);
        });
        li.append(a);
      }
      return li;
    });
    $("case-links").replaceChildren(...(links.length ? links : items([], "no declared entity fields link this card")));
    const history = c.card_history.map((h) => transactionRow(h, h.timestamp, (tr) => cell(tr, h.verdict || "–")));
    fillTable("case-history", history, "No transactions.");
    $("case").hidden = false;
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
    const [review, flagged, recent, countries] = await Promise.all([
      getJson("/api/review?limit=20"),
      getJson("/api/flagged?limit=20"),
      getJson(recentUrl),
      getJson("/api/countries?limit=10"),
    ]);
    renderReview(review.transactions);
    renderRows("flagged", flagged.transactions, true);
    renderRows("recent", recent.transactions, false);
    renderCountries(countries);
  }

  async function onStats(s) {
    if (state.baseline === null) state.baseline = s.processed;
    renderStats(s);
    if (s.processed !== state.lastProcessed || s.verdicts_version !== state.lastVerdicts) {
      state.lastProcessed = s.processed;
      state.lastVerdicts = s.verdicts_version;
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
  $("case-close").addEventListener("click", () => { $("case").hidden = true; $("case-id").textContent = ""; });
  const hash = new URLSearchParams(location.hash.slice(1)).get("case");
  if (hash) openCase(hash).catch(report);
  $("resume").addEventListener("click", start);
  $("action-filter").addEventListener("change", () => refreshTables().catch(report));
  start();
})();
