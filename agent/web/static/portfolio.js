// The portfolio page: every project with its step progress, difficulty, evidence and
// post-mortem versions, and how close the portfolio is to ready.
"use strict";

(() => {
  const { json, el, when } = Coach;
  const STEPS = ["problem", "build", "deploy", "harden", "postmortem", "repeat"];

  function readiness(p) {
    const target = p.done >= 3 ? 5 : 3;
    $readiness().replaceChildren(
      el("div", {}, el("div", { class: "step-number" }, String(p.done)), "done"),
      el("div", { class: "meter", title: `${p.done} of ${target}` },
        el("span", { style: { width: `${Math.min(100, (100 * p.done) / 5)}%` } })),
      el("div", {}, el("strong", { id: "readiness-label" }, p.readiness),
        el("div", { class: "muted small" }, "3 done: ready to apply · 5: strong")));
  }
  const $readiness = () => document.getElementById("readiness");

  function progress(step) {
    const at = step === "done" ? STEPS.length : STEPS.indexOf(step);
    return el("div", { class: "steps", "aria-label": `step ${step}` }, STEPS.map((s, i) =>
      el("span", { class: i < at ? "done" : i === at ? "current" : "", title: s }, s)));
  }

  function evidence(view) {
    const kinds = Object.entries(view.evidence || {});
    if (!kinds.length) return el("p", { class: "muted small" }, "No evidence recorded yet.");
    // Each record as the sentence the coach wrote for it, behind a verified/stated badge.
    return el("dl", { class: "kv small" }, kinds.flatMap(([kind, details]) => {
      const [label, ...rest] = (details.summary || kind).split(": ");
      return [el("dt", {}, label), el("dd", {},
        el("span", { class: "badge " + (details.ok === false ? "warn" : details.verified ? "ok" : "") },
          details.ok === false ? "failed" : details.strength || "stated"), " ", rest.join(": "))];
    }));
  }

  // Each draft sentence with the records it rests on (or framing / a question).
  function sources(sentences) {
    if (!sentences.length) return null;
    return el("details", { class: "small sentences" }, el("summary", {}, "Sentence sources"),
      el("ol", {}, sentences.map((s) => el("li", {}, s.text, " ",
        el("span", { class: "muted" }, s.sources && s.sources.length ? `(${s.sources.join(", ")})` : `(${s.kind})`)))));
  }

  function versions(view, redraw) {
    const items = (view.postmortem_versions || []).map((v) => el("details", {},
      el("summary", {}, `v${v.version} · ${v.source} · ${v.words} words · ${when(v.created_at)}`
        + (v.failed.length ? ` · ${v.failed.length} check(s) open` : " · checks pass")),
      el("pre", {}, v.text), sources(v.sentences || [])));
    const button = el("button", { class: "secondary", type: "button", onclick: async () => {
      button.disabled = true;
      try {
        await json(`/api/projects/${view.id}/postmortem`, { method: "POST" });
        await redraw();
      } catch (err) { Coach.showError("portfolio-error", err); button.disabled = false; }
    } }, "Draft post-mortem");
    return [el("h3", {}, "Post-mortem versions"),
      items.length ? items : el("p", { class: "muted small" }, "None yet."), button];
  }

  function card(view, redraw) {
    const caps = view.capabilities.length ? view.capabilities.join(", ") : "none declared";
    return el("article", { class: "card project", "data-project": view.id },
      el("h2", {}, `#${view.id} ${view.title}`),
      progress(view.step),
      el("p", { class: "small" }, el("strong", {}, view.step === "done" ? "Done" :
        `Step ${view.guide.number}/6: ${view.guide.name}`), ` · difficulty ${view.difficulty} (${caps})`),
      view.problem ? el("p", { class: "small" }, view.problem) : null,
      el("h3", {}, "Evidence"), evidence(view),
      view.gate && view.gate.missing.length ? [el("h3", {}, "Gate still needs"),
        el("ul", { class: "small missing" }, view.gate.missing.map((m) => el("li", {}, m.message)))]
        : null,
      versions(view, redraw));
  }

  async function draw() {
    const portfolio = await json("/api/projects");
    readiness(portfolio);
    const views = await Promise.all(portfolio.projects.map((p) => json(`/api/projects/${p.id}`)));
    const box = document.getElementById("projects");
    box.replaceChildren(...views.map((v) => card(v, draw)));
    if (!views.length) {
      box.append(el("p", { class: "muted" }, "No projects yet: ",
        el("a", { href: "/" }, "start one in the chat"), "."));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    draw().catch((err) => Coach.showError("portfolio-error", err));
  });
})();
