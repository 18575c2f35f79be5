// The chat page: threads, the conversation, the reply as it streams, and the current
// step with what its gate still needs.
"use strict";

(() => {
  const { api, json, events, el, money, num } = Coach;
  const $ = (id) => document.getElementById(id);
  let threadId = null;
  let currentStep = null;
  let playbookRequest = 0;  // only the latest listing or search may fill the panel

  // One playbook entry, folded: its title, and when opened the body and its "try this".
  // The body is HTML rendered by the server from our own Markdown with raw HTML disabled.
  function playbookEntry(entry, open) {
    const body = el("div", { class: "entry-body" });
    body.innerHTML = entry.html;
    const node = el("details", { class: "entry", "data-id": entry.id },
      el("summary", {}, entry.title), body,
      el("p", { class: "try-this" }, el("strong", {}, "Try this: "), entry.try_this));
    if (open) node.open = true;
    return node;
  }

  async function showPlaybook(query) {
    const params = new URLSearchParams();
    if (currentStep) params.set("step", currentStep);
    if (query) params.set("q", query);
    else params.set("limit", "20");  // a step's entries, folded: titles are short
    const mine = ++playbookRequest;
    const data = await json(`/api/playbook?${params}`);
    if (mine !== playbookRequest) return;
    $("playbook-caption").textContent = query
      ? (data.entries.length ? `Best matches for “${query}”` : `Nothing matches “${query}”.`)
      : `For ${currentStep ? `the ${currentStep} step` : "getting started"}`;
    $("playbook-entries").replaceChildren(
      ...data.entries.map((e, i) => playbookEntry(e, query && i === 0)));
  }

  function bubble(role, text) {
    const node = el("li", { class: `msg ${role}` }, text);
    $("messages").append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  // The coach's Markdown, rendered by the server with raw HTML disabled (markdown-it-py),
  // so this page ships no Markdown code of its own. Parsed inertly, then moved in.
  function setHtml(node, html) {
    const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
    const body = doc.body.firstElementChild;
    node.replaceChildren(...body.childNodes);
    node.classList.add("rich");
    for (const a of node.querySelectorAll("a")) a.rel = "noopener noreferrer";
  }

  function chips(toolCalls) {
    if (!toolCalls || !toolCalls.length) return null;
    return el("div", { class: "chips" }, toolCalls.map((call) =>
      el("span", { class: "chip " + (call.ok === false ? "fail" : "ok") }, call.name)));
  }

  // The transcript keeps Messages-API blocks: show the text, and tool calls as chips.
  function renderTranscript(entries) {
    $("messages").replaceChildren();
    for (const entry of entries) {
      const texts = entry.content.filter((b) => b.type === "text").map((b) => b.text);
      const calls = entry.content.filter((b) => b.type === "tool_use")
        .map((b) => ({ name: b.name }));
      if (!texts.length && !calls.length) continue;  // tool results: shown as chips instead
      const node = bubble(entry.role === "user" ? "user" : entry.role, texts.join("\n\n"));
      if (entry.html) setHtml(node, entry.html);
      const row = chips(calls);
      if (row) node.append(row);
    }
  }

  async function refreshStep(projectId) {
    if (!projectId) return;
    const p = await json(`/api/projects/${projectId}`);
    if (p.step !== currentStep) {
      currentStep = p.step;
      showPlaybook(null).catch((err) => Coach.showError("chat-error", err));
    }
    const gate = p.gate || { missing: [], warnings: [] };
    $("step-info").replaceChildren(
      el("div", { class: "step-number" }, p.step === "done" ? "✓" : `${p.guide.number}/6`),
      el("p", {}, el("strong", {}, p.guide.name), ` (${p.step})`),
      el("p", { class: "small" }, el("a", { href: "/portfolio" }, p.title),
        ` · difficulty ${p.difficulty}`),
      el("p", { class: "muted small" }, p.guide.why));
    const items = gate.missing.map((m) => el("li", {}, m.message));
    if (!items.length) {
      items.push(el("li", { class: "muted" }, p.step === "done" ? "Nothing: this project is done."
        : "Nothing: the gate passes. Say `next` to move on."));
    }
    for (const w of gate.warnings || []) items.push(el("li", { class: "muted" }, "⚠ " + w));
    $("gate-missing").replaceChildren(...items);
  }

  function showTurn(turn) {
    const u = turn.usage || {};
    $("turn-meta").replaceChildren(
      `turn ${turn.turn} · ${turn.model} · ${num(u.input_tokens)} in / ${num(u.output_tokens)} out`
      + ` · ${money(turn.cost_usd)} · `,
      turn.trace_id ? el("a", { href: `/traces?trace=${turn.trace_id}` }, "trace") : "no trace");
  }

  const OLDER = "__older__";  // the select's last option while the API has more pages
  let threadsCursor = null, shownThreads = [];

  function threadOption(t) {
    return el("option", { value: t.thread_id },
      `${t.project_title || "new thread"} · ${t.turns} turn${t.turns === 1 ? "" : "s"} · ${t.thread_id}`);
  }

  function drawThreads(selected) {
    const select = $("thread-select");
    const options = shownThreads.map(threadOption);
    if (selected && !shownThreads.some((t) => t.thread_id === selected)) {
      options.push(el("option", { value: selected }, `older thread · ${selected}`));
    }
    if (threadsCursor) options.push(el("option", { value: OLDER }, "older threads…"));
    select.replaceChildren(...options);
    if (threadId) select.value = threadId;
  }

  async function loadThreads(selected) {
    // The 50 most recently used threads; "older threads…" follows the API's cursor. A
    // thread opened by its link that is older than those is still offered.
    const page = await json("/api/threads?limit=50");
    shownThreads = page.threads;
    threadsCursor = page.next_cursor;
    threadId = selected || (shownThreads[0] && shownThreads[0].thread_id) || null;
    drawThreads(selected);
    return shownThreads;
  }

  async function olderThreads() {
    const page = await json(`/api/threads?limit=50&cursor=${encodeURIComponent(threadsCursor)}`);
    const known = new Set(shownThreads.map((t) => t.thread_id));
    shownThreads = shownThreads.concat(page.threads.filter((t) => !known.has(t.thread_id)));
    threadsCursor = page.next_cursor;
    drawThreads(threadId);
  }

  async function openThread(id) {
    threadId = id;
    history.replaceState(null, "", `/?thread=${encodeURIComponent(id)}`);
    const t = await json(`/api/threads/${encodeURIComponent(id)}`);
    renderTranscript(t.transcript);
    if (t.project_id) await refreshStep(t.project_id);
    else $("gate-missing").replaceChildren();
  }

  async function newThread() {
    const { thread_id } = await json("/api/threads", { method: "POST" });
    await loadThreads(thread_id);
    await openThread(thread_id);
    return thread_id;
  }

  async function send(text) {
    if (!threadId) await newThread();
    bubble("user", text);
    const reply = bubble("assistant streaming", "");
    const res = await api(`/api/threads/${encodeURIComponent(threadId)}/messages`, {
      method: "POST", body: { text }, accept: "text/event-stream",
    });
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      reply.remove();
      throw new Error(data.detail || `${res.status} ${res.statusText}`);
    }
    let turn = null, html = null;
    for await (const { event, data } of events(res)) {
      if (event === "text") reply.textContent += data.text;
      else if (event === "html") html = data.html;
      else if (event === "turn") turn = data;
      else if (event === "error") throw new Error(data.detail);
    }
    reply.classList.remove("streaming");
    if (!turn) throw new Error("the reply stopped early; reload to see what was saved");
    // The final text is the one the transcript keeps, formatted.
    if (html !== null) setHtml(reply, html);
    else reply.textContent = turn.reply;
    const row = chips(turn.tool_calls);
    if (row) reply.append(row);
    if (turn.error) bubble("error", turn.error);
    showTurn(turn);
    await refreshStep(turn.project_id);
    await loadThreads(threadId);  // its title and turn count changed
  }

  document.addEventListener("DOMContentLoaded", async () => {
    // The handlers first: the page answers a click while its threads are still loading.
    $("playbook-search").addEventListener("submit", (e) => {
      e.preventDefault();
      showPlaybook($("playbook-query").value.trim())
        .catch((err) => Coach.showError("chat-error", err));
    });
    $("thread-select").addEventListener("change", (e) => {
      const chosen = e.target.value === OLDER ? olderThreads() : openThread(e.target.value);
      chosen.catch((err) => Coach.showError("chat-error", err));
    });
    $("new-thread").addEventListener("click", () => newThread()
      .catch((err) => Coach.showError("chat-error", err)));
    $("message").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("composer").requestSubmit();
    });
    $("composer").addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = $("message").value.trim();
      if (!text) return;
      $("send").disabled = true;
      Coach.showError("chat-error", null);
      try {
        await send(text);
        $("message").value = "";
      } catch (err) {
        Coach.showError("chat-error", err);
      } finally {
        $("send").disabled = false;
        document.querySelectorAll(".msg.streaming").forEach((n) => n.classList.remove("streaming"));
      }
    });
    const wanted = new URLSearchParams(location.search).get("thread");
    try {
      await loadThreads(wanted);
      if (threadId) await openThread(threadId);
      // Not awaited: the transcript is the page's first concern, the playbook its second.
      if (!currentStep) showPlaybook(null).catch((err) => Coach.showError("chat-error", err));
    } catch (err) { Coach.showError("chat-error", err); }
  });
})();
