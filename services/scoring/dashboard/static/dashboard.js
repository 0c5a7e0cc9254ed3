// The Retain dashboard: pages that chart /v1/analytics/... with ECharts. No build step, no
// framework: each page (one script in pages/, registered with Retain.page) fetches its JSON
// (the session cookie authenticates it) and draws it. Every chart is kept in
// window.retainCharts by name, so the browser tests can read what was drawn from the chart
// itself.
"use strict";

window.retainCharts = {};

const PAGES = {};

const NO_DATA = "No data yet. Send events to ingest (see the README's \"Try it\"), or load " +
  "the demo storefront, then come back in a few minutes: the figures are written every " +
  "few minutes.";

const $ = (id) => document.getElementById(id);

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function showMessage(text, isError) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

// `method` other than GET for the few actions a page takes (the customer page's erase).
async function getJson(path, params, method = "GET") {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  const response = await fetch(`${path}?${query}`, { credentials: "same-origin", method });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

function formatValue(figure, value, currency) {
  if (value === null || value === undefined) return "–";
  if (figure.name === "repeat_rate" || figure.name === "churn_risk") {
    return `${(value * 100).toFixed(1)} %`;
  }
  if (figure.money) {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR",
      maximumFractionDigits: 2 }).format(value);
  }
  return new Intl.NumberFormat().format(Math.round(value));
}

function formatChange(change) {
  if (change === null || change === undefined) return { text: "no previous period", cls: "" };
  const percent = (change * 100).toFixed(1);
  if (change > 0) return { text: `▲ ${percent} % vs previous period`, cls: "up" };
  if (change < 0) return { text: `▼ ${percent} % vs previous period`, cls: "down" };
  return { text: "no change vs previous period", cls: "" };
}

function chartIn(element, name, option) {
  const chart = echarts.init(element, null, { renderer: "svg" });
  chart.setOption(option);
  window.retainCharts[name] = chart;
  return chart;
}

function card(page, name, title, wide) {
  const element = document.createElement("article");
  element.className = wide ? "card wide" : "card";
  element.dataset.figure = name;
  element.innerHTML = "<h2></h2><div class=\"chart tall\"></div>";
  element.querySelector("h2").textContent = title;
  page.appendChild(element);
  return element.querySelector(".chart");
}

function fillCurrencies(currencies, chosen) {
  const select = $("currency");
  select.replaceChildren(...currencies.map((code) => new Option(code, code, false, code === chosen)));
  select.disabled = currencies.length === 0;
}

function currentPage() {
  const name = window.location.hash.replace(/^#\/?/, "");
  if (PAGES[name]) return name;
  return Object.entries(PAGES).sort(([, a], [, b]) => a.order - b.order)[0][0];
}

async function show() {
  const name = currentPage();
  for (const link of $("pages").children) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  for (const chart of Object.values(window.retainCharts)) chart.dispose();
  window.retainCharts = {};
  showMessage("", false);
  const page = $("page");
  page.replaceChildren();
  page.dataset.state = "loading";
  const controls = { start: $("start").value, end: $("end").value, currency: $("currency").value };
  try {
    await PAGES[name].render(page, controls);
    page.dataset.state = "ready";
  } catch (error) {
    page.dataset.state = "error";
    showMessage(`The data could not be loaded: ${error.message}`, true);
  }
}

function start() {
  const ordered = Object.entries(PAGES).sort(([, a], [, b]) => a.order - b.order);
  for (const [name, page] of ordered) {
    const link = document.createElement("a");
    link.href = `#/${name}`;
    link.textContent = page.title;
    link.dataset.page = name;
    $("pages").appendChild(link);
  }
  const today = new Date();
  $("end").value = isoDay(today);
  $("start").value = isoDay(new Date(today.getTime() - 29 * 86400000));
  for (const id of ["start", "end", "currency"]) $(id).addEventListener("change", show);
  window.addEventListener("hashchange", show);
  window.addEventListener("resize", () => {
    for (const chart of Object.values(window.retainCharts)) chart.resize();
  });
  show();
}

document.addEventListener("DOMContentLoaded", start);

// What the page scripts use.
window.Retain = {
  NO_DATA,
  card,
  chartIn,
  fillCurrencies,
  formatChange,
  formatValue,
  getJson,
  refresh: show,  // draw the page again, e.g. when a control of its own changed
  showMessage,
  // Draw the page again (after a control of the page's own changed).
  redraw: () => show(),
  // Register a page: its name (the #/name link), its title in the menu, its place in the
  // menu (`order`, ascending) and `render(main, controls)`, which draws it into `main`.
  page(name, { title, order, render }) {
    PAGES[name] = { title, order, render };
  },
};
