// Email: per journey and template, what happened to the emails (sent, suppressed by reason,
// bounced, opened, clicked, unsubscribed) and the orders attributed to their last click; a
// chart over time and a sortable table.
"use strict";

(() => {
  const { chartIn, fillCurrencies, formatValue, getJson, showMessage, sortableTable } =
    window.Retain;

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

  const count = (value) => formatValue(COUNT, value);
  const counted = (key, title) => ({ key, title, value: (row) => row[key], text: count });
  const COLUMNS = [
    { key: "journey", title: "Journey", value: (row) => row.journey || "(none)",
      text: (value) => value, label: true },
    { key: "template", title: "Template", value: (row) => row.template, text: (value) => value,
      label: true },
    counted("sent", "Sent"),
    { key: "suppressed", title: "Suppressed", value: (row) => row.suppressed,
      text: (value, row) => count(value) + (value ? ` (${reasons(row.suppressed_by_reason)})` : "") },
    counted("bounced", "Bounced"),
    counted("opened", "Opened"),
    { key: "open_rate", title: "Open rate", value: (row) => row.open_rate, text: percent },
    counted("clicked", "Clicked"),
    { key: "click_rate", title: "Click rate", value: (row) => row.click_rate, text: percent },
    counted("unsubscribed", "Unsubscribed"),
    counted("orders", "Orders"),
  ];
  const sorted = { key: "sent", descending: true };  // kept while the dashboard is open

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
    const revenue = { key: "revenue", title: "Revenue", value: (row) => row.revenue,
      text: (value) => formatValue(MONEY, value, data.currency) };
    listed.appendChild(sortableTable([...COLUMNS, revenue], data.rows, sorted));
  }

  window.Retain.page("email", { title: "Email", order: 60, render });
})();
