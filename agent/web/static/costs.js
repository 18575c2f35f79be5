// The costs page: spend over time by model and purpose (SVG bar charts drawn here),
// tokens by type with the cache-hit share and savings, the budget, the dearest threads.
"use strict";

(() => {
  const { json, el, money, num } = Coach;
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f6fde", "#7b5cd6", "#1f8a4c", "#d17a00", "#c0362c", "#118a9b", "#8a6d3b"];
  const TOKEN_TYPES = [["input_tokens", "input"], ["output_tokens", "output"],
    ["cache_read_input_tokens", "cache read"], ["cache_creation_input_tokens", "cache write"]];

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function legend(keys) {
    return el("div", { class: "legend" }, keys.map((k, i) =>
      el("span", {}, el("i", { style: { background: COLORS[i % COLORS.length] } }), k)));
  }

  // One bar per day, stacked by series; `metric` is "cost_usd", "tokens" or "calls".
  function stackedBars(box, days, series, metric, format) {
    // Drawn at the box's own width, so labels keep their size on a phone.
    const W = Math.max(300, Math.round(box.clientWidth || 720)), H = 240, left = 64, bottom = 28,
      top = 10, right = 8;
    const plotW = W - left - right, plotH = H - top - bottom;
    const totals = days.map((_, i) => series.reduce((sum, s) => sum + s[metric][i], 0));
    const max = Math.max(...totals, 0);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${metric} per day` });
    for (let k = 0; k <= 4; k++) {
      const y = top + plotH - (plotH * k) / 4;
      chart.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: y, y2: y }),
        svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, max ? format((max * k) / 4) : k ? "" : "0"));
    }
    const step = plotW / days.length, width = Math.max(2, step * 0.7);
    const every = Math.ceil(days.length / Math.max(2, Math.floor(plotW / 64)));
    days.forEach((day, i) => {
      let y = top + plotH;
      series.forEach((s, j) => {
        const value = s[metric][i];
        if (!value || !max) return;
        const h = (plotH * value) / max;
        y -= h;
        chart.append(svg("rect", { class: "bar", x: left + i * step + (step - width) / 2, y,
          width, height: Math.max(h, 0.5), fill: COLORS[j % COLORS.length] },
        svg("title", {}, `${day} · ${s.key}: ${format(value)}`)));
      });
      if (i % every === 0) {
        chart.append(svg("text", { x: left + i * step + step / 2, y: H - 8, "text-anchor": "middle" },
          day.slice(5)));
      }
    });
    if (!max) chart.append(svg("text", { x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" },
      "nothing spent in this window"));
    box.replaceChildren(chart, legend(series.map((s) => s.key)));
  }

  function tokenBars(box, totals) {
    const W = Math.max(300, Math.round(box.clientWidth || 720)), rowH = 30, left = 96,
      H = TOKEN_TYPES.length * rowH + 8;
    const max = Math.max(...TOKEN_TYPES.map(([k]) => totals[k]), 1);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "tokens by type" });
    TOKEN_TYPES.forEach(([key, label], i) => {
      const y = 4 + i * rowH, w = ((W - left - 80) * totals[key]) / max;
      chart.append(svg("text", { x: left - 8, y: y + 17, "text-anchor": "end" }, label),
        svg("rect", { class: "bar", x: left, y: y + 4, width: Math.max(w, 0.5), height: rowH - 10,
          fill: COLORS[i] }, svg("title", {}, `${label}: ${num(totals[key])} tokens`)),
        svg("text", { x: left + w + 6, y: y + 17 }, num(totals[key])));
    });
    box.replaceChildren(chart);
  }

  function stat(label, value, extra) {
    return el("div", { class: "stat" }, el("div", { class: "value" }, value),
      el("div", { class: "label" }, label), extra || null);
  }

  function summary(report, budget) {
    const used = budget.limit_usd ? Math.min(100, (100 * budget.spent_today_usd) / budget.limit_usd) : 0;
    document.getElementById("summary").replaceChildren(
      stat("spent in this window", money(report.total_usd)),
      stat("model calls", num(report.calls),
        report.estimated_calls ? el("div", { class: "muted small" },
          `${num(report.estimated_calls)} offline (estimated tokens)`) : null),
      stat("cache-hit share of prompt tokens", `${(100 * report.cache_hit_share).toFixed(1)}%`),
      stat("saved by prompt caching", money(report.cache_savings_usd)),
      stat("spent today", money(budget.spent_today_usd),
        budget.limit_usd === null ? el("div", { class: "muted small" }, "no daily cap")
          : el("div", { class: "meter", title: `${used.toFixed(0)}% of today's budget` },
            el("span", { style: { width: `${used}%` } }))),
      stat("left today", budget.left_usd === null ? "no cap" : money(budget.left_usd),
        budget.limit_usd === null ? null : el("div", { class: "muted small" }, `of ${money(budget.limit_usd, 2)}`)));
  }

  // Real tokens, or the offline coach's estimate marked "~" (never shown as real usage).
  function threadTokens(r) {
    const real = TOKEN_TYPES.reduce((s, [k]) => s + r[k], 0);
    if (real || !r.estimated_calls) return num(real);
    return el("span", { title: "estimated by the offline coach" },
      `~${num(r.estimated_input_tokens + r.estimated_output_tokens)}`);
  }

  function topThreads(report) {
    const rows = report.rows.slice(0, 8);
    document.getElementById("top-threads").replaceChildren(
      el("thead", {}, el("tr", {}, el("th", {}, "thread"), el("th", { class: "num" }, "calls"),
        el("th", { class: "num" }, "tokens"), el("th", { class: "num" }, "cost"))),
      el("tbody", {}, rows.length ? rows.map((r) => el("tr", {},
        el("td", {}, r.key === "-" ? "(no thread)" : el("a", { href: `/?thread=${encodeURIComponent(r.key)}` }, r.key)),
        el("td", { class: "num" }, num(r.calls)),
        el("td", { class: "num" }, threadTokens(r)),
        el("td", { class: "num" }, money(r.cost_usd, 6))))
        : el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No model calls in this window."))));
  }

  async function draw() {
    const days = Number(document.getElementById("days").value);
    const since = new Date(Date.now() - (days - 1) * 864e5).toISOString().slice(0, 10);
    const [byModel, byPurpose, report, threads, budget] = await Promise.all([
      json(`/api/costs/daily?split=model&days=${days}`),
      json(`/api/costs/daily?split=purpose&days=${days}`),
      json(`/api/costs?by=model&since=${since}`),
      json(`/api/costs?by=thread&since=${since}`),
      json("/api/budget"),
    ]);
    // The offline coach costs $0: then spend charts show tokens, which still tell the story.
    const anyCost = byModel.series.some((s) => s.cost_usd.some((c) => c > 0));
    const anyReal = byModel.series.some((s) => s.tokens.some((t) => t > 0));
    // The offline coach's token counts are estimates: shown only as such, never as usage.
    const metric = anyCost ? "cost_usd" : anyReal ? "tokens" : "estimated_tokens";
    const format = anyCost ? (v) => money(v, v < 0.01 ? 4 : 2) : (v) => num(Math.round(v));
    document.getElementById("metric-note").textContent = anyCost ? "US dollars per day (UTC)."
      : anyReal ? "No spend in this window: showing tokens per day instead."
        : "No spend and no real token usage in this window: showing the offline coach's "
          + "estimated tokens per day (estimates, at no cost).";
    stackedBars(document.getElementById("chart-model"), byModel.days, byModel.series, metric, format);
    stackedBars(document.getElementById("chart-purpose"), byPurpose.days, byPurpose.series, metric, format);
    const totals = Object.fromEntries(TOKEN_TYPES.map(([k]) => [k, report.rows.reduce((s, r) => s + r[k], 0)]));
    tokenBars(document.getElementById("chart-tokens"), totals);
    document.getElementById("estimate-note").textContent = report.estimated_calls
      ? `Plus ${num(report.estimated_calls)} offline call${report.estimated_calls === 1 ? "" : "s"} with about `
        + `${num(report.estimated_input_tokens)} input and ${num(report.estimated_output_tokens)} `
        + "output tokens, estimated: the offline coach has no real token usage and costs nothing."
      : "";
    summary(report, budget);
    topThreads(threads);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const redraw = () => draw().catch((err) => Coach.showError("costs-error", err));
    document.getElementById("days").addEventListener("change", redraw);
    redraw();
  });
})();
