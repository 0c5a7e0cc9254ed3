// CLV: how historical and predicted CLV are distributed (fixed buckets), the top customers by
// each, and the model's fit: its parameters and the calibration chart (customers per repeat
// purchases made, actual against what the fitted BG/NBD expects).
"use strict";

(() => {
  const { card, chartIn, fillCurrencies, formatValue, getJson, showMessage, NO_DATA } =
    window.Retain;

  const money = { money: true };
  const RANKINGS = { clv_predicted: "Top customers by predicted CLV",
    clv_historical: "Top customers by historical CLV" };
  const COLUMNS = [
    ["customer_id", "Customer"], ["clv_predicted", "Predicted CLV"],
    ["clv_historical", "Historical CLV"], ["orders", "Orders"], ["ladder_step", "Ladder step"],
    ["value_tier", "Value tier"], ["rfm_segment", "RFM segment"],
  ];
  const NO_MODEL = "No model yet: the first refit fits one (daily, or now with POST " +
    "/v1/refit); it needs 100 customers with orders, 20 of them repeat buyers.";

  function histogram(element, data) {
    chartIn(element, "clv.histogram", {
      animation: false,
      grid: { left: 56, right: 16, top: 40, bottom: 56 },
      legend: { top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", name: data.currency, data: data.buckets.map((b) => b.label),
        axisLabel: { rotate: 30 } },
      yAxis: { type: "value", name: "customers", minInterval: 1 },
      series: [
        { name: "historical", type: "bar", data: data.histograms.historical },
        { name: "predicted", type: "bar", data: data.histograms.predicted },
      ],
    });
  }

  function table(columns, rows, format) {
    const element = document.createElement("table");
    const head = element.createTHead().insertRow();
    for (const [, title] of columns) {
      const th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    }
    const body = element.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const [column] of columns) {
        const cell = tr.insertCell();
        cell.dataset.column = column;
        cell.dataset.value = JSON.stringify(row[column] ?? null);
        cell.textContent = format(column, row[column]);
      }
    }
    return element;
  }

  function topCustomers(page, data) {
    for (const [ranking, title] of Object.entries(RANKINGS)) {
      const element = document.createElement("article");
      element.className = "card wide";
      element.dataset.figure = `clv.top.${ranking}`;
      element.innerHTML = "<h2></h2>";
      element.querySelector("h2").textContent = `${title} (${data.currency})`;
      const customers = data.top[ranking];
      if (customers.length === 0) {
        const empty = document.createElement("p");
        empty.textContent = "No customers with orders in this currency yet.";
        element.appendChild(empty);
      } else {
        element.appendChild(table(COLUMNS, customers, (column, value) =>
          (column.startsWith("clv_") ? formatValue(money, value, data.currency) : value ?? "–")));
      }
      page.appendChild(element);
    }
  }

  function modelCard(page, model) {
    const element = document.createElement("article");
    element.className = "card";
    element.dataset.figure = "clv.model";
    element.innerHTML = "<h2>Model</h2>";
    page.appendChild(element);
    if (!model) {
      const empty = document.createElement("p");
      empty.textContent = NO_MODEL;
      element.appendChild(empty);
      return;
    }
    const rows = [
      ["status", model.status + (model.reason ? `: ${model.reason}` : "")],
      ["version", model.version],
      ["fitted at", model.fitted_at],
      ["observation end", model.as_of],
      ["customers fitted on", model.customers],
      ["repeat customers", model.repeat_customers],
      ...Object.entries(model.bgnbd || {}).map(([name, value]) => [`BG/NBD ${name}`, value]),
      ...Object.entries(model.gamma_gamma || {}).map(([name, value]) => [`Gamma-Gamma ${name}`, value]),
    ];
    element.appendChild(table([["name", "Parameter"], ["value", "Value"]],
      rows.map(([name, value]) => ({ name, value })),
      (column, value) => (typeof value === "number" && !Number.isInteger(value)
        ? value.toPrecision(4) : String(value ?? "–"))));
  }

  function calibration(page, model) {
    const fit = model && model.calibration;
    if (!fit) return;
    const element = card(page, "clv.calibration",
      "Repeat purchases per customer: actual against the model's expectation");
    const series = [{ name: "actual", type: "bar", data: fit.actual }];
    if (fit.expected) {
      series.push({ name: "expected (BG/NBD)", type: "bar", data: fit.expected });
    }
    chartIn(element, "clv.calibration", {
      animation: false,
      grid: { left: 56, right: 16, top: 40, bottom: 40 },
      legend: { top: 0 },
      tooltip: { trigger: "axis", valueFormatter: (value) => `${Math.round(value * 100) / 100}` },
      xAxis: { type: "category", name: "repeat purchases", nameLocation: "center",
        nameGap: 26, data: fit.repeat_purchases },
      yAxis: { type: "value", name: "customers" },
      series,
    });
  }

  async function render(page, controls) {
    const data = await getJson("/v1/analytics/clv", controls);
    fillCurrencies(data.currencies, data.currency);
    if (data.day === null) {
      showMessage(NO_DATA, false);
    } else {
      histogram(card(page, "clv.histogram",
        `CLV distribution, customers with orders (${data.day})`, true), data);
    }
    modelCard(page, data.model);
    calibration(page, data.model);
    if (data.day !== null) topCustomers(page, data);
  }

  window.Retain.page("clv", { title: "CLV", order: 40, render });
})();
