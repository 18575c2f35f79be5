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

  // The readiness report (as `coach portfolio report`): pillars, mistakes, what to add next.
  function report(r) {
    const pillars = Object.entries(r.pillars).map(([name, p]) => el("li",
      { class: p.covered ? "covered" : "missing-pillar" },
      el("span", { class: "badge " + (p.covered ? "ok" : "warn") }, p.covered ? "covered" : "not yet"),
      " ", el("strong", {}, name.replace(/_/g, " ")), ": ", p.detail));
    const seq = r.difficulty.sequence.map((p) => `#${p.id} ${p.difficulty}`).join(" → ");
    document.getElementById("report").replaceChildren(
      el("h2", {}, "Readiness report"),
      el("p", { class: "small" }, `Difficulty: ${seq || "no projects yet"} `,
        el("span", { class: "badge " + (r.difficulty.rising ? "ok" : "warn") },
          r.difficulty.rising ? "rising" : "not rising")),
      el("ul", { class: "small pillars" }, pillars),
      el("div", { id: "mistakes" }, r.mistakes.length ? [el("h3", {}, "Common mistakes found"),
        el("ul", { class: "small" }, r.mistakes.map((m) => el("li", { "data-mistake": m.id },
          m.message, ` (project ${m.projects.map((i) => "#" + i).join(", ")})`)))]
        : el("p", { class: "muted small" }, "No common mistakes found in your records.")),
      el("p", { class: "small", id: "next-capability" }, el("strong", {}, "Next project: add "),
        el("code", {}, r.next_capability.capability), ` — ${r.next_capability.reason}`));
  }

  // Publishing from the page: all fields of a project, or none (the CLI picks fields).
  function publicToggle(view, info, redraw) {
    const fields = info.public[String(view.id)] || [];
    const box = el("input", { type: "checkbox", class: "publish" });
    box.checked = fields.length > 0;
    box.addEventListener("change", async () => {
      box.disabled = true;
      try {
        await json("/api/portfolio/publish", { method: "POST",
          body: { project_id: view.id, unpublish: !box.checked } });
        await redraw();
      } catch (err) { Coach.showError("portfolio-error", err); box.disabled = false; }
    });
    const live = info.deployments[String(view.id)];
    return el("p", { class: "small" }, el("label", {}, box, " Public in your shared portfolio"),
      fields.length ? el("span", { class: "muted" }, ` (${fields.length} fields)`) : null,
      live ? [" · ", el("span", { class: "badge " + (live.live ? "ok" : "warn"), "data-live": "" },
        live.status)] : null);
  }

  function card(view, redraw, info) {
    const caps = view.capabilities.length ? view.capabilities.join(", ") : "none declared";
    return el("article", { class: "card project", "data-project": view.id },
      el("h2", {}, `#${view.id} ${view.title}`),
      info ? publicToggle(view, info, redraw) : null,
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

  // Projects a page at a time (each is a card with a request of its own), "More projects"
  // following the API's cursor; a redraw keeps as many pages as were shown.
  const PAGE = 20;
  const shown = { pages: 1, next: null, info: null };

  function projectsPage(cursor) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) params.set("cursor", cursor);
    return json(`/api/projects?${params}`);
  }

  const cards = (projects) => Promise.all(projects.map((p) => json(`/api/projects/${p.id}`)))
    .then((views) => views.map((v) => card(v, draw, shown.info)));

  async function draw() {
    const portfolio = await projectsPage(null);
    readiness(portfolio);  // over every project, whichever page this is
    shown.info = await json("/api/portfolio");
    report(shown.info.report);
    let projects = portfolio.projects, next = portfolio.next_cursor;
    for (let n = 1; n < shown.pages && next; n += 1) {
      const page = await projectsPage(next);
      projects = projects.concat(page.projects);
      next = page.next_cursor;
    }
    shown.next = next;
    const box = document.getElementById("projects");
    box.replaceChildren(...await cards(projects));
    if (!projects.length) {
      box.append(el("p", { class: "muted" }, "No projects yet: ",
        el("a", { href: "/" }, "start one in the chat"), "."));
    }
    document.getElementById("projects-more").hidden = !shown.next;
  }

  async function more() {
    const page = await projectsPage(shown.next);
    document.getElementById("projects").append(...await cards(page.projects));
    shown.pages += 1;
    shown.next = page.next_cursor;
    document.getElementById("projects-more").hidden = !shown.next;
  }

  // The share link: made here, shown once (only its hash is stored), revocable.
  function shareButtons() {
    const status = document.getElementById("share-status");
    document.getElementById("share-make").addEventListener("click", async () => {
      try {
        const made = await json("/api/portfolio/share", { method: "POST" });
        const url = location.origin + made.path;
        status.replaceChildren("Your link: ", el("a", { href: made.path, id: "share-url" }, url),
          made.replaced ? " (the previous link stopped working)" : "");
      } catch (err) { Coach.showError("portfolio-error", err); }
    });
    document.getElementById("share-revoke").addEventListener("click", async () => {
      try {
        const done = await json("/api/portfolio/share", { method: "DELETE" });
        status.textContent = done.revoked ? "Revoked: the link now answers 404." : "You had no live link.";
      } catch (err) { Coach.showError("portfolio-error", err); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    shareButtons();
    const button = document.getElementById("projects-more");
    button.addEventListener("click", async () => {
      button.disabled = true;  // one request per page: a second click would fetch it twice
      try { await more(); } catch (err) { Coach.showError("portfolio-error", err); }
      button.disabled = false;
    });
    draw().catch((err) => Coach.showError("portfolio-error", err));
  });
})();
