// Segments: customers (or historical value) per value tier, RFM segment, ladder step and
// lifecycle stage over time, the RFM recency x frequency grid as a heatmap, and the moves
// between RFM segments and between ladder steps in the range as sankeys.
"use strict";

(() => {
  const { card, chartIn, fillCurrencies, formatValue, getJson, refresh, showMessage, NO_DATA } =
    window.Retain;

  const DIMENSION_TITLES = {
    value_tier: "Value tiers",
    rfm_segment: "RFM segments",
    ladder_step: "Loyalty ladder",
    lifecycle_stage: "Lifecycle stages",
  };
  const MEASURES = { customers: "customers", value: "historical value" };
  let measure = "customers";  // kept while the dashboard is open

  function measureSwitch(page) {
    const bar = document.createElement("div");
    bar.className = "toolbar wide";
    bar.innerHTML = "<label>Show <select id=\"segments-measure\"></select></label>";
    const select = bar.querySelector("select");
    for (const [value, label] of Object.entries(MEASURES)) {
      select.appendChild(new Option(label, value, false, value === measure));
    }
    select.addEventListener("change", () => {
      measure = select.value;
      refresh();
    });
    page.appendChild(bar);
  }

  function money(value, currency) {
    return formatValue({ money: true }, value, currency);
  }

  function overTime(page, dimension, segments, currency) {
    const name = `segments.${dimension}`;
    const element = card(page, name, `${DIMENSION_TITLES[dimension]}: ${MEASURES[measure]}`);
    chartIn(element, name, {
      animation: false,
      grid: { left: 64, right: 16, top: 40, bottom: 24 },
      legend: { type: "scroll", top: 0 },
      tooltip: {
        trigger: "axis",
        valueFormatter: (value) => (measure === "value" ? money(value, currency) : value),
      },
      xAxis: { type: "time" },
      yAxis: { type: "value" },
      series: segments.map((segment) => ({
        name: segment.segment,
        type: "line",
        data: measure === "value" ? segment.value_series : segment.customers_series,
        symbolSize: 5,
        connectNulls: false,
      })),
    });
  }

  function rfmGrid(page, grid, currency) {
    const title = `RFM grid (recency x frequency), ${grid.day || "no snapshot"}: ` +
      MEASURES[measure];
    const element = card(page, "segments.rfm_grid", title, true);
    const shown = measure === "value" ? grid.value : grid.customers;
    const cells = [];
    shown.forEach((row, r) => row.forEach((amount, f) => cells.push([f, r, amount])));
    chartIn(element, "segments.rfm_grid", {
      animation: false,
      grid: { left: 72, right: 96, top: 24, bottom: 40 },
      tooltip: {
        formatter: (item) => {
          const [f, r] = item.value;
          return `recency ${r + 1}, frequency ${f + 1}: ${grid.customers[r][f]} customers, ` +
            money(grid.value[r][f], currency);
        },
      },
      xAxis: { type: "category", name: "frequency", data: ["1", "2", "3", "4", "5"] },
      yAxis: { type: "category", name: "recency", data: ["1", "2", "3", "4", "5"] },
      visualMap: { min: 0, max: Math.max(1, ...cells.map((c) => c[2])), calculable: true,
        orient: "vertical", right: 8, top: "middle",
        formatter: (value) => (measure === "value" ? money(value, currency) : Math.round(value)) },
      series: [{
        name: measure,
        type: "heatmap",
        data: cells,
        label: { show: true,
          formatter: (item) => (measure === "value" ? money(item.value[2], currency) : item.value[2]) },
      }],
    });
  }

  // A move's two ends are separate nodes ("from" on the left, "to" on the right), so a move
  // and its way back do not make the cycle a sankey cannot draw.
  function sankey(page, dimension, moves, period) {
    const name = `segments.moves.${dimension}`;
    const title = `${DIMENSION_TITLES[dimension]}: moves from ${period.start} to ${period.end}`;
    const element = card(page, name, title, true);
    if (moves.length === 0) {
      element.classList.remove("tall");
      element.textContent = "No customer moved in this range. Moves are counted as scoring " +
        "rescores customers after their orders, and after each refit.";
      return;
    }
    const nodes = new Set();
    const links = moves.map((move) => {
      const source = `from ${move.from}`;
      const target = `to ${move.to}`;
      nodes.add(source);
      nodes.add(target);
      return { source, target, value: move.customers };
    });
    chartIn(element, name, {
      animation: false,
      tooltip: { trigger: "item" },
      series: [{
        type: "sankey",
        left: 16, right: 160, top: 16, bottom: 16,
        nodeAlign: "justify",
        emphasis: { focus: "adjacent" },
        data: [...nodes].map((node) => ({ name: node })),
        links,
      }],
    });
  }

  async function render(page, controls) {
    const data = await getJson("/v1/analytics/segments", controls);
    fillCurrencies(data.currencies, data.currency);
    const dimensions = Object.entries(data.dimensions);
    if (dimensions.every(([, segments]) => segments.length === 0)) {
      showMessage(NO_DATA, false);
      return;
    }
    measureSwitch(page);
    for (const [dimension, segments] of dimensions) {
      overTime(page, dimension, segments, data.currency);
    }
    rfmGrid(page, data.rfm_grid, data.currency);
    for (const [dimension, moves] of Object.entries(data.moves)) {
      sankey(page, dimension, moves, data);
    }
  }

  window.Retain.page("segments", { title: "Segments", order: 20, render });
})();
