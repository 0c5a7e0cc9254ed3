// Channels: per channel, campaign or affiliate, new customers and CLV:CPA month by month, and
// a table of the range's economics (profiles touched, conversion, new customers, spend, CPA,
// average CLV, CLV:CPA) sortable by each column.
"use strict";

(() => {
  const { card, chartIn, fillCurrencies, formatValue, getJson, refresh, showMessage,
    sortableTable } = window.Retain;

  const BY = { channel: "Channel", campaign: "Campaign", affiliate: "Affiliate" };
  const NO_CHANNELS = "No channel figures in this range yet. Customers are counted under the " +
    "channel of their first touch (UTM tags or the referrer of the events sent to ingest), and " +
    "spend is set per channel and month with PUT /v1/spend/{channel}/{month} or `retain spend " +
    "import`; widen the range, or come back after the next snapshot (every few minutes).";
  const money = { money: true };
  const COLUMNS = [
    ["label", "Name", "text"],
    ["profiles_touched", "Profiles touched", "count"],
    ["conversion_rate", "Conversion", "percent"],
    ["new_customers", "New customers", "count"],
    ["spend", "Spend", "money"],
    ["cpa", "CPA", "money"],
    ["average_clv_historical", "Avg. historical CLV", "money"],
    ["average_clv_predicted", "Avg. predicted CLV", "money"],
    ["clv_to_cpa", "CLV:CPA", "ratio"],
  ];
  let by = "channel";  // kept while the dashboard is open
  const sorted = { key: "new_customers", descending: true };

  function format(kind, value, currency) {
    if (value === null || value === undefined) return "–";
    if (kind === "percent") return `${(value * 100).toFixed(1)} %`;
    if (kind === "ratio") return value.toFixed(2);
    if (kind === "money") return formatValue(money, value, currency);
    if (kind === "count") return formatValue({}, value, currency);
    return value;
  }

  function byChooser(page) {
    const label = document.createElement("label");
    label.className = "card wide chooser";
    label.textContent = "Rows per ";
    const select = document.createElement("select");
    select.id = "channels-by";
    for (const [value, title] of Object.entries(BY)) {
      select.appendChild(new Option(title.toLowerCase(), value, false, value === by));
    }
    select.addEventListener("change", () => {
      by = select.value;
      refresh();
    });
    label.appendChild(select);
    page.appendChild(label);
  }

  function overTime(page, data, measure, title) {
    const name = `channels.${measure}`;
    chartIn(card(page, name, title), name, {
      animation: false,
      grid: { left: 56, right: 16, top: 40, bottom: 24 },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.months },
      yAxis: { type: "value", minInterval: measure === "new_customers" ? 1 : 0 },
      series: data.rows.map((row) => ({
        name: row.label,
        type: measure === "new_customers" ? "bar" : "line",
        data: row.months.map((month) => month[measure]),
        connectNulls: false,
        symbolSize: 6,
      })),
    });
  }

  function economics(page, data) {
    const element = document.createElement("article");
    element.className = "card wide";
    element.dataset.figure = "channels.table";
    element.innerHTML = "<h2></h2>";
    element.querySelector("h2").textContent =
      `${BY[data.by]} economics, ${data.months[0]} to ${data.months[data.months.length - 1]} ` +
      `(${data.currency || "no currency"}): click a column to sort`;
    const columns = COLUMNS.map(([key, title, kind]) => ({
      key,
      title,
      value: (row) => row[key],
      text: (value) => format(kind, value, data.currency),
      label: kind === "text",
    }));
    const table = sortableTable(columns, data.rows, sorted);
    table.dataset.table = "channels";
    element.appendChild(table);
    page.appendChild(element);
  }

  async function render(page, controls) {
    const data = await getJson("/v1/analytics/channels", { ...controls, by });
    fillCurrencies(data.currencies, data.currency);
    byChooser(page);
    if (data.rows.length === 0) {
      showMessage(NO_CHANNELS, false);
      return;
    }
    overTime(page, data, "new_customers", `New customers per ${by}, by month of first order`);
    overTime(page, data, "clv_to_cpa", `CLV:CPA per ${by}, by month`);
    economics(page, data);
  }

  window.Retain.page("channels", { title: "Channels", order: 50, render });
})();
