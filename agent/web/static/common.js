// Shared by every page: API calls with the session cookie and CSRF header, SSE parsing,
// DOM building and number formats. No framework: the pages are small.
"use strict";

const Coach = (() => {
  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  // Every write echoes the CSRF cookie in a header (double submit); reads need nothing.
  async function api(path, { method = "GET", body, accept } = {}) {
    const headers = { Accept: accept || "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = cookie("coach_csrf");
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) {
      location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("signed out");
    }
    return res;
  }

  async function json(path, options) {
    const res = await api(path, options);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.detail || `${res.status} ${res.statusText}`);
    return data;
  }

  // Server-sent events from a fetch body: yields {event, data} as each block arrives.
  async function* events(res) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      }
    }
  }

  // el("div", {class: "x", onclick: f}, "text", child): text is always set as text.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      // Through CSSOM: the CSP forbids inline style attributes, not script-set styles.
      else if (key === "style") Object.assign(node.style, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function money(value, digits = 4) {
    if (value === null || value === undefined) return "unknown";
    return "$" + Number(value).toFixed(digits);
  }
  const num = (value) => Number(value || 0).toLocaleString("en-US");
  const ms = (value) => (value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(1) + " ms");
  const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "");

  function showError(id, err) {
    const node = document.getElementById(id);
    if (node) node.textContent = err ? String(err.message || err) : "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const link of document.querySelectorAll(".top nav a")) {
      if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
    }
    const out = document.getElementById("signout");
    if (out) out.addEventListener("click", async () => {
      await api("/signout", { method: "POST" }).catch(() => null);
      location.href = "/signin";
    });
  });

  return { api, json, events, el, money, num, ms, when, showError };
})();
