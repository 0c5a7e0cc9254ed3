// Segments: customers per value tier, RFM segment, ladder step and lifecycle stage over
// time, and the RFM recency x frequency grid as a heatmap.
"use strict";

(() => {
  const { card, chartIn, fillCurrencies, formatValue, getJson, showMessage, NO_DATA } =
    window.Retain;

  const DIMENSION_TITLES = {
    value_tier: "Value tiers",
    rfm_segment: "RFM segments",
    ladder_step: "Loyalty ladder",
    lifecycle_stage: "Lifecycle stages",
  };

  async function render(page, controls) {
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

  window.Retain.page("segments", { title: "Segments", order: 20, render });
})();
