// The Retain dashboard: pages that chart /v1/analytics/... with ECharts. No build step, no
// framework: each page fetches its JSON (the session cookie authenticates it) and draws it.
// Every chart is kept in window.retainCharts by name, so the browser tests can read what was
// drawn from the chart itself.
"use strict";

window.retainCharts = {};

const PAGES = {
  overview: { title: "Overview", render: renderOverview },
  segments: { title: "Segments", render: renderSegments },
};

const DIMENSION_TITLES = {
  value_tier: "Value tiers",
  rfm_segment: "RFM segments",
  ladder_step: "Loyalty ladder",
  lifecycle_stage: "Lifecycle stages",
};

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

async function getJson(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  const response = await fetch(`${path}?${query}`, { credentials: "same-origin" });
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

function sparkline(figure, currency) {
  return {
    animation: false,
    grid: { left: 8, right: 8, top: 8, bottom: 20 },
    tooltip: {
      trigger: "axis",
      valueFormatter: (value) => formatValue(figure, value, currency),
    },
    xAxis: { type: "time", axisLabel: { fontSize: 10 } },
    yAxis: { type: "value", show: false, scale: true },
    series: [{
      name: figure.title,
      type: figure.kind === "flow" ? "bar" : "line",
      data: figure.series,
      connectNulls: false,
      symbolSize: 5,  // a level with one day of history is one point: it must show
    }],
  };
}

async function renderOverview(page, controls) {
  const data = await getJson("/v1/analytics/overview", controls);
  fillCurrencies(data.currencies, data.currency);
  if (data.figures.every((figure) => figure.value === null)) showMessage(NO_DATA, false);
  for (const figure of data.figures) {
    const card = document.createElement("article");
    card.className = "card";
    card.dataset.figure = figure.name;
    const change = formatChange(figure.change);
    card.innerHTML = "<h2></h2><p class=\"value\"></p><p class=\"change\"></p><div class=\"chart\"></div>";
    card.querySelector("h2").textContent = figure.title;
    card.querySelector(".value").textContent = formatValue(figure, figure.value, data.currency);
    const changeLine = card.querySelector(".change");
    changeLine.textContent = change.text;
    changeLine.classList.add(...(change.cls ? [change.cls] : []));
    page.appendChild(card);
    chartIn(card.querySelector(".chart"), figure.name, sparkline(figure, data.currency));
  }
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

async function renderSegments(page, controls) {
  const data = await getJson("/v1/analytics/segments", controls);
  fillCurrencies(data.currencies, data.currency);
  const dimensions = Object.entries(data.dimensions);
  if (dimensions.every(([, segments]) => segments.length === 0)) {
    showMessage(NO_DATA, false);
    return;
  }
  for (const [dimension, segments] of dimensions) {
    const element = card(page, `segments.${dimension}`, `${DIMENSION_TITLES[dimension]}: customers`);
    chartIn(element, `segments.${dimension}`, {
      animation: false,
      grid: { left: 48, right: 16, top: 40, bottom: 24 },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time" },
      yAxis: { type: "value" },
      series: segments.map((segment) => ({
        name: segment.segment,
        type: "line",
        data: segment.customers_series,
        symbolSize: 5,
        connectNulls: false,
      })),
    });
  }
  const grid = data.rfm_grid;
  const title = `RFM grid (recency x frequency), ${grid.day || "no snapshot"}: customers`;
  const element = card(page, "segments.rfm_grid", title, true);
  const cells = [];
  grid.customers.forEach((row, r) => row.forEach((count, f) => cells.push([f, r, count])));
  chartIn(element, "segments.rfm_grid", {
    animation: false,
    grid: { left: 72, right: 96, top: 24, bottom: 40 },
    tooltip: {
      formatter: (item) => `recency ${item.value[1] + 1}, frequency ${item.value[0] + 1}: ` +
        `${item.value[2]} customers, ` +
        formatValue({ money: true }, grid.value[item.value[1]][item.value[0]], data.currency),
    },
    xAxis: { type: "category", name: "frequency", data: ["1", "2", "3", "4", "5"] },
    yAxis: { type: "category", name: "recency", data: ["1", "2", "3", "4", "5"] },
    visualMap: { min: 0, max: Math.max(1, ...cells.map((c) => c[2])), calculable: true,
      orient: "vertical", right: 8, top: "middle" },
    series: [{ name: "customers", type: "heatmap", data: cells, label: { show: true } }],
  });
}

function fillCurrencies(currencies, chosen) {
  const select = $("currency");
  select.replaceChildren(...currencies.map((code) => new Option(code, code, false, code === chosen)));
  select.disabled = currencies.length === 0;
}

function currentPage() {
  const name = window.location.hash.replace(/^#\/?/, "");
  return PAGES[name] ? name : "overview";
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
  for (const [name, page] of Object.entries(PAGES)) {
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
