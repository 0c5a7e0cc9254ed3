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
    throw new Error(`${response.status}: ${describeDetail(body.detail) || response.statusText}`);
  }
  return body;
}

// An error answer's `detail`: a message, or (422) the list of the parameters refused, each
// with its message, which names the parameter or is given its name.
function describeDetail(detail) {
  if (typeof detail === "string" || detail === undefined) return detail;
  if (!Array.isArray(detail)) return JSON.stringify(detail);
  return detail
    .map((error) => {
      const name = Array.isArray(error.loc) ? String(error.loc[error.loc.length - 1]) : "";
      const message = String(error.msg ?? "");
      return name && !message.startsWith(name) ? `${name}: ${message}` : message;
    })
    .join("; ");
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
  // A draw overtaken by a newer one (the range changed meanwhile) writes into a page no
  // longer shown: its charts are not the page's.
  if (element.isConnected) window.retainCharts[name] = chart;
  return chart;
}

// A table sortable by each column, clicked (or Enter on its heading's button). `columns`:
// { key, title, value(row), text(value, row), label: true for a column of names (sorted
// ascending first; the others descending first) }; `sorted` ({ key, descending }) holds the
// order, so a page keeps it across draws. Missing values go last either way. Headings and
// cells carry data-column, cells data-value (the value as JSON), so what is shown can be read.
function sortableTable(columns, rows, sorted) {
  const table = document.createElement("table");
  table.className = "data";
  const head = table.createTHead().insertRow();
  const body = table.createTBody();
  const fill = () => {
    const { value } = columns.find((column) => column.key === sorted.key);
    const ordered = [...rows].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      if (x === null || x === undefined || y === null || y === undefined) {
        return (x === null || x === undefined) - (y === null || y === undefined);
      }
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return sorted.descending ? -order : order;
    });
    body.replaceChildren();
    for (const row of ordered) {
      const line = body.insertRow();
      for (const column of columns) {
        const cell = line.insertCell();
        const found = column.value(row);
        cell.dataset.column = column.key;
        cell.dataset.value = JSON.stringify(found ?? null);
        cell.textContent = column.text(found, row);
      }
    }
    for (const th of head.cells) {
      const active = th.dataset.column === sorted.key;
      th.setAttribute("aria-sort", active ? (sorted.descending ? "descending" : "ascending") : "none");
    }
  };
  for (const column of columns) {
    const th = document.createElement("th");
    th.dataset.column = column.key;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.title;
    th.appendChild(button);
    th.addEventListener("click", () => {
      sorted.descending = sorted.key === column.key ? !sorted.descending : !column.label;
      sorted.key = column.key;
      fill();
    });
    head.appendChild(th);
  }
  fill();
  return table;
}

// Which of the range and currency controls the page uses: the others are hidden.
const CONTROLS = { range: ["start", "end"], currency: ["currency"] };

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

let drawing = 0;  // which draw is the latest: an earlier one still loading is dropped

async function show() {
  const name = currentPage();
  const mine = ++drawing;
  for (const link of $("pages").children) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  for (const chart of Object.values(window.retainCharts)) chart.dispose();
  window.retainCharts = {};
  showMessage("", false);
  // A new element: a draw still loading writes into the old one, no longer shown.
  const page = $("page").cloneNode(false);
  $("page").replaceWith(page);
  page.dataset.state = "loading";
  for (const [control, ids] of Object.entries(CONTROLS)) {
    for (const id of ids) $(id).closest("label").hidden = !PAGES[name].uses.includes(control);
  }
  const controls = { start: $("start").value, end: $("end").value, currency: $("currency").value };
  try {
    await PAGES[name].render(page, controls);
    if (mine === drawing) page.dataset.state = "ready";
  } catch (error) {
    if (mine !== drawing) return;
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
  sortableTable,
  // Register a page: its name (the #/name link), its title in the menu, its place in the
  // menu (`order`, ascending), `render(main, controls)`, which draws it into `main`, and the
  // controls it uses (`uses`: "range", "currency"; both unless it says).
  page(name, { title, order, render, uses = ["range", "currency"] }) {
    PAGES[name] = { title, order, render, uses };
  },
};
