// Lifecycle: customers per lifecycle stage over time (stacked), the funnel of the customers
// first seen in the range with its conversions, and the cohort retention triangle.
"use strict";

(() => {
  const { card, chartIn, fillCurrencies, getJson, showMessage, NO_DATA } = window.Retain;

  const percent = (share) => (share === null || share === undefined ? "–" : `${(share * 100).toFixed(1)} %`);
  const count = (value) => new Intl.NumberFormat().format(Math.round(value));

  // A card that says what to do instead of drawing an empty chart.
  function note(page, name, title, text) {
    const element = card(page, name, title, true);
    const paragraph = document.createElement("p");
    paragraph.className = "empty";
    paragraph.textContent = text;
    element.replaceWith(paragraph);
  }

  function stages(page, data) {
    const name = "lifecycle.stages";
    const title = "Customers per lifecycle stage";
    if (data.stages.every((stage) => stage.value === null)) {
      note(page, name, title, "No stage counted in this range yet: the segments are written " +
        "with every snapshot once scoring has scored customers. Choose a range that ends today.");
      return;
    }
    chartIn(card(page, name, title, true), name, {
      animation: false,
      grid: { left: 56, right: 16, top: 40, bottom: 24 },
      legend: { top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time" },
      yAxis: { type: "value" },
      series: data.stages.map((stage) => ({
        name: stage.title,
        type: "line",
        stack: "stages",
        areaStyle: {},
        data: stage.series,
        symbolSize: 5,
        connectNulls: false,
      })),
    });
  }

  function funnel(page, data) {
    const name = "lifecycle.funnel";
    const title = "Funnel of the customers first seen in the range";
    if (data.funnel[0].customers === 0) {
      note(page, name, title, "No customer was first seen in this range. Send page views, " +
        "Product Viewed, Product Added, Checkout Started and Order Completed events to ingest " +
        "(or load the demo storefront), or choose a longer range.");
      return;
    }
    chartIn(card(page, name, title, true), name, {
      animation: false,
      tooltip: {
        formatter: (item) => `${item.name}: ${count(item.value)} customers<br>` +
          `${percent(item.data.to_previous)} of the step before, ` +
          `${percent(item.data.overall)} of the visits`,
      },
      series: [{
        name: "customers",
        type: "funnel",
        sort: "none",
        minSize: "8%",
        left: "10%",
        right: "10%",
        top: 8,
        bottom: 8,
        label: {
          position: "inside",
          formatter: (item) => `${item.name}: ${count(item.value)}` +
            (item.data.to_previous === null ? "" : ` (${percent(item.data.to_previous)} · ` +
              `${percent(item.data.overall)} overall)`),
        },
        data: data.funnel.map((step) => ({
          name: step.title,
          value: step.customers,
          to_previous: step.to_previous,
          overall: step.overall,
        })),
      }],
    });
  }

  function cohorts(page, data) {
    const name = "lifecycle.cohorts";
    const title = "Cohort retention: share of each first-order month's customers ordering " +
      "in each month since";
    if (data.cohorts.length === 0) {
      note(page, name, title, "No first order in the months of this range. Orders sent to " +
        "ingest (Order Completed, past ones included) build the triangle; choose a range " +
        "that covers the months of the first orders.");
      return;
    }
    const months = Math.max(...data.cohorts.map((cohort) => cohort.shares.length));
    const cells = [];
    data.cohorts.forEach((cohort, row) => cohort.shares.forEach((share, since) => {
      cells.push([since, row, share]);
    }));
    const element = card(page, name, title, true);
    element.style.height = `${Math.max(280, 80 + 28 * data.cohorts.length)}px`;
    chartIn(element, name, {
      animation: false,
      grid: { left: 150, right: 96, top: 16, bottom: 48 },
      tooltip: {
        formatter: (item) => {
          const cohort = data.cohorts[item.value[1]];
          return `${cohort.month}, month ${item.value[0]}: ` +
            `${count(cohort.returning[item.value[0]])} of ${count(cohort.customers)} ` +
            `customers (${percent(item.value[2])})`;
        },
      },
      xAxis: { type: "category", name: "months since", nameLocation: "center", nameGap: 28,
        data: Array.from({ length: months }, (_, since) => String(since)) },
      yAxis: { type: "category", inverse: true,
        data: data.cohorts.map((cohort) => `${cohort.month} (${count(cohort.customers)})`) },
      visualMap: { min: 0, max: 1, calculable: true, orient: "vertical", right: 8,
        top: "middle", formatter: (value) => percent(value) },
      series: [{ name: "share returning", type: "heatmap", data: cells,
        label: { show: true, formatter: (item) => percent(item.value[2]) } }],
    });
  }

  async function render(page, controls) {
    const data = await getJson("/v1/analytics/lifecycle", { start: controls.start, end: controls.end });
    fillCurrencies(data.currencies, controls.currency || data.currency);
    const empty = data.stages.every((stage) => stage.value === null) &&
      data.funnel[0].customers === 0 && data.cohorts.length === 0;
    if (empty) showMessage(NO_DATA, false);
    stages(page, data);
    funnel(page, data);
    cohorts(page, data);
  }

  window.Retain.page("lifecycle", { title: "Lifecycle", order: 30, render, uses: ["range"] });
})();
