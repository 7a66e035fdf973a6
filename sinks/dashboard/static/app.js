// dealstream dashboards: fetch the JSON API, draw with the bundled ECharts, refresh on a timer.
// window.__dashboard reports what was drawn, so the browser test can check real rendering.
"use strict";

(function () {
  const state = { charts: {}, timer: null, options: null };
  const report = { page: "", ready: false, renders: 0, errors: [], points: {} };
  window.__dashboard = report;
  window.addEventListener("error", (e) => report.errors.push(String(e.message)));

  const page = (location.pathname.replace(/^\//, "") || "forecast").split("/")[0];
  report.page = page;
  const form = document.getElementById("filters");
  const status = document.getElementById("status");

  function setStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function token() { return sessionStorage.getItem("dealstream-token") || ""; }

  async function api(path) {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const response = await fetch(path, { headers });
    if (response.status === 401) {
      document.getElementById("token-box").hidden = false;
      throw new Error("a bearer token is required: enter it above");
    }
    const body = await response.json();
    if (!response.ok) { throw new Error(body.error || response.statusText); }
    return body;
  }

  function chart(id) {
    if (!state.charts[id]) {
      state.charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    }
    return state.charts[id];
  }

  function draw(id, option, points) {
    report.points[id] = points;
    const empty = points === 0 ? {
      graphic: { type: "text", left: "center", top: "middle",
                 style: { text: "no data for these filters", fill: "#9aa5b1", fontSize: 14 } },
    } : { graphic: [] };
    chart(id).setOption(Object.assign({ animation: false }, option, empty), true);
  }

  const fmtDay = (iso) => String(iso).slice(0, 10);
  const pct = (v) => (v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + " %");
  const uniq = (values) => [...new Set(values)];

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    const range = data.get("range");
    const end = new Date();
    if (range === "all") {
      params.set("from", "1970-01-01T00:00:00Z");
      params.set("to", new Date(end.getTime() + 400 * 86400e3).toISOString());
    } else {
      params.set("from", new Date(end.getTime() - Number(range) * 86400e3).toISOString());
      // Forecasts target future periods: show them up to the longest horizon ahead.
      params.set("to", new Date(end.getTime() + (page === "forecast" ? 120 : 0) * 86400e3).toISOString());
    }
    for (const name of ["region", "product_line", "horizon"]) {
      if (data.get(name)) { params.set(name, data.get(name)); }
    }
    return params.toString();
  }

  function grouped(rows, xKey, seriesKey, valueKey) {
    const xs = uniq(rows.map((r) => fmtDay(r[xKey]))).sort();
    const names = uniq(rows.map((r) => r[seriesKey])).sort();
    const series = names.map((name) => ({
      name, type: "bar", stack: "total",
      data: xs.map((x) => {
        const row = rows.find((r) => fmtDay(r[xKey]) === x && r[seriesKey] === name);
        return row ? row[valueKey] : 0;
      }),
    }));
    return { xs, series };
  }

  const boards = {
    forecast(d) {
      const xs = d.series.map((r) => fmtDay(r.target_start));
      draw("fc-series", {
        tooltip: { trigger: "axis" }, legend: { data: ["forecast", "actual", "interval"] },
        xAxis: { type: "category", data: xs }, yAxis: { type: "value", name: "units" },
        series: [
          { name: "low", type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 },
            data: d.series.map((r) => r.low) },
          { name: "interval", type: "line", stack: "band", symbol: "none", lineStyle: { opacity: 0 },
            areaStyle: { color: "#3e7bfa", opacity: 0.18 }, data: d.series.map((r) => r.high - r.low) },
          { name: "forecast", type: "line", color: "#3e7bfa", data: d.series.map((r) => r.forecast) },
          { name: "actual", type: "line", color: "#e8590c", data: d.series.map((r) => r.observed) },
        ],
      }, d.series.length);
      const labels = d.segments.map((r) => r.region + " / " + r.product_line);
      draw("fc-segments", {
        tooltip: { trigger: "axis", formatter: (items) => {
          const row = d.segments[items[0].dataIndex];
          return labels[items[0].dataIndex] + "<br>forecast " + row.forecast.toFixed(0) +
            ", actual " + row.observed.toFixed(0) + "<br>WAPE " + pct(row.wape) +
            ", coverage " + pct(row.coverage) + " (nominal " + pct(row.interval_level) + ")";
        } },
        legend: {}, grid: { bottom: 90 },
        xAxis: { type: "category", data: labels, axisLabel: { rotate: 45 } }, yAxis: { type: "value" },
        series: [
          { name: "forecast", type: "bar", data: d.segments.map((r) => r.forecast) },
          { name: "actual", type: "bar", data: d.segments.map((r) => r.observed) },
        ],
      }, d.segments.length);
      draw("fc-factors", {
        tooltip: {}, grid: { left: 110 },
        xAxis: { type: "value", name: "mean |weight|" },
        yAxis: { type: "category", inverse: true, data: d.factors.map((r) => r.factor) },
        series: [{ type: "bar", data: d.factors.map((r) => r.importance), color: "#7048e8" }],
      }, d.factors.length);
      const level = d.segments.length ? d.segments[0].interval_level : null;
      draw("fc-accuracy", {
        tooltip: { trigger: "axis" }, legend: {},
        xAxis: { type: "category", data: d.accuracy.map((r) => fmtDay(r.period_start)) },
        yAxis: [{ type: "value", name: "ratio", min: 0, max: 1 }, { type: "value", name: "MAE" }],
        series: [
          { name: "WAPE", type: "line", data: d.accuracy.map((r) => r.wape) },
          { name: "coverage", type: "line", data: d.accuracy.map((r) => r.coverage),
            markLine: level ? { symbol: "none", data: [{ yAxis: level, name: "nominal" }] } : undefined },
          { name: "MAE", type: "bar", yAxisIndex: 1, data: d.accuracy.map((r) => r.mae), color: "#adb5bd" },
        ],
      }, d.accuracy.length);
      const table = document.getElementById("fc-freshness");
      table.replaceChildren();
      const head = table.insertRow();
      for (const title of ["region", "product line", "newest input", "input age", "keys", "not ok"]) {
        const th = document.createElement("th"); th.textContent = title; head.appendChild(th);
      }
      for (const r of d.freshness) {
        const row = table.insertRow();
        const hours = r.input_age_s / 3600;
        const cells = [r.region, r.product_line, String(r.newest_input).replace("T", " ").slice(0, 19),
          hours < 48 ? hours.toFixed(1) + " h" : (hours / 24).toFixed(1) + " d", r.keys, r.not_ok];
        cells.forEach((value, i) => {
          const cell = row.insertCell(); cell.textContent = String(value);
          if (i === 3 && hours > 24 * 8) { cell.className = "stale"; }
        });
      }
      report.points["fc-freshness"] = d.freshness.length;
    },

    journey(d) {
      const f = d.funnel;
      const stages = [["WeCom added", f.added], ["store visit ≤ 72 h", f.visited_72h],
        ["purchase ≤ 72 h", f.purchased_72h]];
      draw("jr-funnel", {
        tooltip: {}, series: [{ type: "funnel", sort: "descending", minSize: "10%",
          label: { position: "inside", formatter: "{b}: {c}" },
          data: stages.map(([name, value]) => ({ name, value: value || 0 })) }],
      }, f.added || 0);
      document.getElementById("jr-kpis").textContent =
        `${f.added || 0} WeCom contacts added; ${pct(f.not_converted_72h_share)} of the ` +
        `${f.decided || 0} whose 72 h have passed did not buy within 72 h.`;
      const ch = d.channels;
      draw("jr-channels", {
        tooltip: { trigger: "axis" }, legend: {}, grid: { bottom: 60 },
        xAxis: { type: "category", data: ch.map((r) => r.channel || "unknown"), axisLabel: { rotate: 45 } },
        yAxis: [{ type: "value", name: "customers" },
                { type: "value", name: "not converted", min: 0, max: 1 }],
        series: [
          { name: "added", type: "bar", data: ch.map((r) => r.added) },
          { name: "visited ≤ 72 h", type: "bar", data: ch.map((r) => r.visited_72h) },
          { name: "purchased ≤ 72 h", type: "bar", data: ch.map((r) => r.purchased_72h) },
          { name: "not converted in 72 h", type: "line", yAxisIndex: 1, color: "#c62828",
            data: ch.map((r) => r.not_converted_72h_share) },
        ],
      }, ch.length);
      const hours = [...Array(24).keys()];
      const sum = (key) => {
        const cells = new Map();
        for (const r of d.heatmap) {
          const k = r[key] + "|" + r.hour;
          cells.set(k, (cells.get(k) || 0) + r.touchpoints);
        }
        return [...cells].map(([k, v]) => [...k.split("|"), v]);
      };
      const heat = (id, rows, ys, label) => {
        const max = Math.max(1, ...rows.map((c) => c[2]));
        draw(id, {
          tooltip: {}, grid: { left: 100, bottom: 70 },
          xAxis: { type: "category", data: hours, name: "hour" },
          yAxis: { type: "category", data: ys.map(label) },
          visualMap: { min: 0, max, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
          series: [{ type: "heatmap",
            data: rows.map(([y, hour, v]) => [Number(hour), ys.indexOf(y), v]) }],
        }, rows.length);
      };
      const touches = uniq(d.heatmap.map((r) => r.touch)).sort();
      heat("jr-heatmap", sum("touch"), touches, (t) => t);
      const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
      heat("jr-weekday", sum("weekday"), ["1", "2", "3", "4", "5", "6", "7"], (w) => days[w - 1]);
      const daily = grouped(d.daily, "day", "touch", "touchpoints");
      draw("jr-daily", {
        tooltip: { trigger: "axis" }, legend: {},
        xAxis: { type: "category", data: daily.xs }, yAxis: { type: "value", name: "touchpoints" },
        series: daily.series,
      }, d.daily.length);
    },

    compliance(d) {
      const byRule = grouped(d.by_rule_day, "day", "rule_id", "violations");
      draw("cp-rule-day", {
        tooltip: { trigger: "axis" }, legend: {},
        xAxis: { type: "category", data: byRule.xs }, yAxis: { type: "value", name: "violations" },
        series: byRule.series,
      }, d.by_rule_day.length);
      draw("cp-rep", {
        tooltip: { trigger: "axis" }, legend: {}, grid: { left: 80 },
        xAxis: { type: "value" },
        yAxis: { type: "category", inverse: true, data: d.by_rep.map((r) => r.rep_id) },
        series: [
          { name: "high severity", type: "bar", stack: "v", color: "#c62828", data: d.by_rep.map((r) => r.high) },
          { name: "other", type: "bar", stack: "v", color: "#f59f00",
            data: d.by_rep.map((r) => r.violations - r.high) },
        ],
      }, d.by_rep.length);
      const health = d.channel_health;
      draw("cp-health", {
        tooltip: { trigger: "axis", formatter: (items) => {
          const r = health[items[0].dataIndex];
          const part = (name, v) => (v === null ? "" : `<br>${name} ${v.toFixed(2)}`);
          return `${r.channel_id} (${r.channel_kind}, ${r.region || "no region"})<br>score ` +
            r.score.toFixed(2) + part("turnover", r.turnover) + part("SLA", r.sla) +
            part("intent", r.intent) + (r.alerting ? "<br>alerting" : "");
        } },
        grid: { bottom: 60 },
        xAxis: { type: "category", data: health.map((r) => r.channel_id), axisLabel: { rotate: 45 } },
        yAxis: { type: "value", min: 0, max: 1, name: "score" },
        series: [{ type: "bar", data: health.map((r) => ({
          value: r.score, itemStyle: { color: r.alerting ? "#c62828" : "#2b8a3e" } })) }],
      }, health.length);
      draw("cp-dead-codes", {
        tooltip: {}, grid: { left: 160 },
        xAxis: { type: "value", name: "records" },
        yAxis: { type: "category", inverse: true,
                 data: d.dead_letters.map((r) => r.stage + " / " + r.error_code) },
        series: [{ type: "bar", color: "#495057", data: d.dead_letters.map((r) => r.records) }],
      }, d.dead_letters.length);
      const daily = grouped(d.dead_letters_daily, "day", "stage", "records");
      draw("cp-dead-daily", {
        tooltip: { trigger: "axis" }, legend: {},
        xAxis: { type: "category", data: daily.xs }, yAxis: { type: "value", name: "records" },
        series: daily.series,
      }, d.dead_letters_daily.length);
    },
  };

  async function refresh() {
    setStatus("loading…", false);
    try {
      const data = await api("/api/" + page + "?" + query());
      boards[page](data);
      report.renders += 1;
      report.ready = true;
      setStatus("updated " + new Date().toLocaleTimeString(), false);
    } catch (err) {
      report.errors.push(String(err.message || err));
      setStatus(String(err.message || err), true);
    }
  }

  function schedule() {
    clearInterval(state.timer);
    const seconds = Number(new FormData(form).get("refresh"));
    if (seconds > 0) { state.timer = setInterval(refresh, seconds * 1000); }
  }

  function fill(select, values) {
    const keep = select.value;
    for (const value of values) {
      const option = document.createElement("option");
      option.value = option.textContent = String(value);
      select.appendChild(option);
    }
    select.value = keep;
  }

  async function start() {
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
    const section = document.querySelector(`section[data-board="${page}"]`);
    if (!section) { setStatus("unknown page " + page, true); return; }
    section.hidden = false;
    document.querySelectorAll(".only-forecast").forEach((el) => { el.hidden = page !== "forecast"; });
    // Links and reloads keep the filters: they live in the URL query string.
    const initial = new URLSearchParams(location.search);
    try {
      state.options = await api("/api/options");
    } catch (err) {
      report.errors.push(String(err.message || err));
      setStatus(String(err.message || err), true);
      return;
    }
    fill(form.elements.region, state.options.regions);
    fill(form.elements.product_line, state.options.product_lines);
    fill(form.elements.horizon, state.options.horizons);
    form.elements.refresh.value = String(state.options.refresh_s);
    for (const name of ["range", "region", "product_line", "horizon", "refresh"]) {
      if (initial.has(name)) { form.elements[name].value = initial.get(name); }
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === "token") { sessionStorage.setItem("dealstream-token", event.target.value); }
      const params = new URLSearchParams(new FormData(form));
      params.delete("token");
      history.replaceState(null, "", "?" + params.toString());
      schedule();
      refresh();
    });
    window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
    schedule();
    await refresh();
  }

  start();
})();
