// Overview: each headline figure with its value for the range, the change against the
// previous period, and its trend.
"use strict";

(() => {
  const { chartIn, fillCurrencies, formatChange, formatValue, getJson, showMessage, NO_DATA } =
    window.Retain;

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

  async function render(page, controls) {
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

  window.Retain.page("overview", { title: "Overview", order: 10, render });
})();
