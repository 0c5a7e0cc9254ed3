// Email: per journey and template, what happened to the emails (sent, suppressed by reason,
// bounced, opened, clicked, unsubscribed) and the orders attributed to their last click; a
// chart over time and a sortable table.
"use strict";

(() => {
  const { chartIn, fillCurrencies, formatValue, getJson, showMessage } = window.Retain;

  const NO_EMAIL = "No email yet. Journeys send email once customers with an address and " +
    "consent do what starts them (a signup, an abandoned cart, an order): send such events " +
    "to ingest (see the README's \"Try it\") or load the demo storefront, then come back in a " +
    "few minutes.";
  const COUNT = { money: false };
  const MONEY = { money: true };
  const percent = (value) => (value === null || value === undefined ? "–" :
    `${(value * 100).toFixed(1)} %`);
  const reasons = (byReason) => Object.entries(byReason)
    .map(([reason, count]) => `${reason.replaceAll("_", " ")} ${formatValue(COUNT, count)}`)
    .join(", ");

  // [heading, value of a row, text shown]; the value sorts.
  const COLUMNS = [
    ["Journey", (r) => r.journey || "(none)", (v) => v],
    ["Template", (r) => r.template, (v) => v],
    ["Sent", (r) => r.sent, (v) => formatValue(COUNT, v)],
    ["Suppressed", (r) => r.suppressed, (v, r) => `${formatValue(COUNT, v)}` +
      (v ? ` (${reasons(r.suppressed_by_reason)})` : "")],
    ["Bounced", (r) => r.bounced, (v) => formatValue(COUNT, v)],
    ["Opened", (r) => r.opened, (v) => formatValue(COUNT, v)],
    ["Open rate", (r) => r.open_rate, percent],
    ["Clicked", (r) => r.clicked, (v) => formatValue(COUNT, v)],
    ["Click rate", (r) => r.click_rate, percent],
    ["Unsubscribed", (r) => r.unsubscribed, (v) => formatValue(COUNT, v)],
    ["Orders", (r) => r.orders, (v) => formatValue(COUNT, v)],
    ["Revenue", (r) => r.revenue, (v, r, currency) => formatValue(MONEY, v, currency)],
  ];

  function sortable(table, rows, currency) {
    const body = table.querySelector("tbody");
    let sortedBy = 2;
    let descending = true;
    const fill = () => {
      const [, valueOf] = COLUMNS[sortedBy];
      const ordered = [...rows].sort((a, b) => {
        const x = valueOf(a) ?? -1;
        const y = valueOf(b) ?? -1;
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      body.replaceChildren(...ordered.map((row) => {
        const line = document.createElement("tr");
        for (const [, valueOf, show] of COLUMNS) {
          const cell = document.createElement("td");
          cell.textContent = show(valueOf(row), row, currency);
          line.appendChild(cell);
        }
        return line;
      }));
      table.querySelectorAll("th").forEach((th, n) => {
        th.setAttribute("aria-sort", n !== sortedBy ? "none" : descending ? "descending" : "ascending");
      });
    };
    const head = document.createElement("tr");
    COLUMNS.forEach(([heading], n) => {
      const th = document.createElement("th");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = heading;
      button.addEventListener("click", () => {
        descending = sortedBy === n ? !descending : n > 1;
        sortedBy = n;
        fill();
      });
      th.appendChild(button);
      head.appendChild(th);
    });
    table.querySelector("thead").appendChild(head);
    fill();
  }

  function section(page, name, title) {
    const element = document.createElement("article");
    element.className = "card wide";
    element.dataset.figure = name;
    element.innerHTML = "<h2></h2>";
    element.querySelector("h2").textContent = title;
    page.appendChild(element);
    return element;
  }

  async function render(page, controls) {
    const data = await getJson("/v1/analytics/email", controls);
    fillCurrencies(data.currencies, data.currency);
    if (data.rows.length === 0) {
      showMessage(NO_EMAIL, false);
      return;
    }
    const over = section(page, "email.daily", "Emails per day: sent, opened, clicked; " +
      "orders attributed to a click");
    const chart = document.createElement("div");
    chart.className = "chart tall";
    over.appendChild(chart);
    const names = { sent: "sent", opened: "opened", clicked: "clicked", orders: "orders" };
    chartIn(chart, "email.daily", {
      animation: false,
      grid: { left: 48, right: 16, top: 40, bottom: 24 },
      legend: { top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time" },
      yAxis: { type: "value", minInterval: 1 },
      series: Object.entries(names).map(([measure, name]) => ({
        name,
        type: measure === "orders" ? "bar" : "line",
        data: data.series[measure],
        symbolSize: 5,
      })),
    });

    const totals = data.totals;
    const summary = section(page, "email.totals", "All journeys");
    const line = document.createElement("p");
    line.className = "summary";
    line.textContent = `${formatValue(COUNT, totals.sent)} sent, ` +
      `${formatValue(COUNT, totals.suppressed)} suppressed` +
      (totals.suppressed ? ` (${reasons(totals.suppressed_by_reason)})` : "") +
      `, ${formatValue(COUNT, totals.bounced)} bounced; open rate ${percent(totals.open_rate)}, ` +
      `click rate ${percent(totals.click_rate)}; ${formatValue(COUNT, totals.orders)} orders ` +
      `attributed, ${formatValue(MONEY, totals.revenue, data.currency)}.`;
    summary.appendChild(line);

    const listed = section(page, "email.table", "Per journey and template");
    const table = document.createElement("table");
    table.className = "data";
    table.innerHTML = "<thead></thead><tbody></tbody>";
    listed.appendChild(table);
    sortable(table, data.rows, data.currency);
  }

  window.Retain.page("email", { title: "Email", order: 60, render });
})();
