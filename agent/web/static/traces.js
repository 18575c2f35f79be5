// The traces page: recent turns with filters (errors, slow, costly), a page at a time with
// "Older" following the API's cursor, and one trace as a waterfall of its spans with
// durations, tokens and cost per span.
"use strict";

(() => {
  const { json, el, money, num, ms, when } = Coach;
  const $ = (id) => document.getElementById(id);

  // The list a page at a time: the turns shown so far, where the next page starts, and the
  // filters they were asked for (so "Older" goes on with those, whatever the form says now).
  const list = { traces: [], next: null, filters: "", asked: 0, selected: null };

  function query() {
    const params = new URLSearchParams({ limit: "100" });
    if ($("f-errors").checked) params.set("errors", "true");
    if ($("f-slow").value) params.set("slow_ms", $("f-slow").value);
    if ($("f-cost").value) params.set("min_cost_usd", $("f-cost").value);
    return params.toString();
  }

  // A new list (older=false) with the form's filters, or the next page of the current one.
  async function load(older = false) {
    if (!older) Object.assign(list, { traces: [], next: null, filters: query() });
    const params = new URLSearchParams(list.filters);
    if (older) params.set("cursor", list.next);
    const asked = ++list.asked;
    const page = await json(`/api/traces?${params}`);
    if (asked !== list.asked) return list.traces;  // a newer request replaced this one
    list.traces = list.traces.concat(page.traces);
    list.next = page.next_cursor;
    draw();
    return list.traces;
  }

  function draw() {
    // A filtered page can be empty and still not the last: the server looks at a bounded
    // number of turns per request, so say that older ones may still match.
    const none = list.next ? "None of the latest turns match; Older looks further back." : "No traces match.";
    $("trace-list").replaceChildren(
      el("thead", {}, el("tr", {}, ["time (UTC)", "duration", "step", "calls", "tokens", "cost", ""]
        .map((h, i) => el("th", { class: i && i < 6 ? "num" : "" }, h)))),
      el("tbody", {}, list.traces.length ? list.traces.map((t) => el("tr", {
        "data-trace": t.trace_id, class: t.trace_id === list.selected ? "selected" : undefined,
        onclick: () => show(t.trace_id) },
      el("td", {}, when(t.start_time)), el("td", { class: "num" }, ms(t.duration_ms)),
      el("td", { class: "num" }, t.step || "-"), el("td", { class: "num" }, t.model_calls),
      el("td", { class: "num" }, tokens(t)),
      el("td", { class: "num" }, money(t.cost_usd, 6)),
      el("td", {}, t.error ? el("span", { class: "badge warn" }, "error") : "")))
        : el("tr", {}, el("td", { colspan: 7, class: "muted" }, none))));
    $("trace-older").hidden = !list.next;
  }

  function depths(spans) {
    const parent = Object.fromEntries(spans.map((s) => [s.span_id, s.parent_id]));
    const depth = (id, n = 0) => (parent[id] && parent[id] in parent && n < 20 ? depth(parent[id], n + 1) : n);
    return Object.fromEntries(spans.map((s) => [s.span_id, depth(s.span_id)]));
  }

  function kind(span) {
    const a = span.attributes;
    if (span.status === "error") return "error";
    if (a["gen_ai.operation.name"] === "chat") return "chat";
    if (a["gen_ai.operation.name"] === "execute_tool") return "tool";
    return "";
  }

  // The offline coach's counts are estimates: "~" and a title say so, never real usage.
  function tokens(t) {
    if (t.input_tokens + t.output_tokens || !t.estimated_input_tokens) return num(t.input_tokens + t.output_tokens);
    return el("span", { title: "estimated by the offline coach" },
      `~${num(t.estimated_input_tokens + t.estimated_output_tokens)}`);
  }

  function meta(span) {
    const a = span.attributes, parts = [ms(span.duration_ms)];
    if ("gen_ai.usage.input_tokens" in a) {
      parts.push(`${num(a["gen_ai.usage.input_tokens"])} in / ${num(a["gen_ai.usage.output_tokens"])} out tokens`);
      parts.push(a["coach.cost.unknown"] ? "cost unknown" : money(a["llm.cost.total"] || 0, 6));
    } else if ("coach.usage.estimated.input_tokens" in a) {
      parts.push(`~${num(a["coach.usage.estimated.input_tokens"])} in / `
        + `~${num(a["coach.usage.estimated.output_tokens"] || 0)} out tokens (estimated)`);
    }
    if (a["coach.tool.outcome"]) parts.push(a["coach.tool.outcome"]);
    if (span.status === "error") parts.push("error: " + (span.status_message || a["error.type"] || ""));
    return parts.join(" · ");
  }

  async function show(traceId) {
    list.selected = traceId;
    history.replaceState(null, "", `/traces?trace=${encodeURIComponent(traceId)}`);
    document.querySelectorAll("#trace-list tr.selected").forEach((r) => r.classList.remove("selected"));
    const row = document.querySelector(`#trace-list tr[data-trace="${CSS.escape(traceId)}"]`);
    if (row) row.classList.add("selected");
    const t = await json(`/api/traces/${encodeURIComponent(traceId)}`);
    const start = Math.min(...t.spans.map((s) => Date.parse(s.start_time)));
    const end = Math.max(...t.spans.map((s) => Date.parse(s.start_time) + s.duration_ms));
    const total = Math.max(end - start, 0.001), depth = depths(t.spans);
    const rows = t.spans.map((s) => {
      const offset = (100 * (Date.parse(s.start_time) - start)) / total;
      const width = Math.max((100 * s.duration_ms) / total, 0.4);
      return el("div", { class: "span-row", "data-span": s.span_id },
        el("div", { class: "span-name", title: s.name, style: { paddingLeft: `${depth[s.span_id] * 0.8}rem` } }, s.name),
        el("div", { class: "span-track" }, el("div", { class: `span-bar ${kind(s)}`, title: meta(s),
          style: { left: `${Math.min(offset, 99.6)}%`, width: `${Math.min(width, 100 - Math.min(offset, 99.6))}%` } })),
        el("div", { class: "span-meta" }, meta(s)));
    });
    $("trace-detail").replaceChildren(
      el("h2", {}, "Waterfall"),
      el("p", { class: "small muted" }, `trace ${t.trace_id} · ${t.spans.length} spans · ${t.model_calls} model calls · `
        + (t.input_tokens + t.output_tokens || !t.estimated_input_tokens
          ? `${num(t.input_tokens)} in / ${num(t.output_tokens)} out tokens`
          : `~${num(t.estimated_input_tokens)} in / ~${num(t.estimated_output_tokens)} out tokens (estimated)`)
        + ` · ${money(t.cost_usd, 6)}`),
      el("div", { class: "waterfall" }, rows));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const redraw = () => load().catch((err) => Coach.showError("traces-error", err));
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); redraw(); });
    const older = $("trace-older");
    older.addEventListener("click", async () => {
      older.disabled = true;  // one request per page: a second click would fetch it twice
      try { await load(true); } catch (err) { Coach.showError("traces-error", err); }
      older.disabled = false;
    });
    try {
      const traces = await load();
      const wanted = new URLSearchParams(location.search).get("trace") || (traces[0] && traces[0].trace_id);
      if (wanted) await show(wanted);
    } catch (err) { Coach.showError("traces-error", err); }
  });
})();
