// Customer: search by email or user id, then one customer's profile, scores, ladder step and
// stage history (step charts), timeline of touchpoints and emails, export and erase.
"use strict";

(() => {
  const { card, chartIn, getJson, showMessage } = window.Retain;
  const API = "/v1/analytics/customers";
  const PROFILE_GROUPS = ["consent", "acquisition", "activity", "commerce", "loyalty"];
  const HISTORY_TITLES = { ladder_step: "Loyalty ladder step", lifecycle_stage: "Lifecycle stage" };
  const SCORE_FIELDS = ["clv_historical", "clv_predicted", "currency", "value_tier", "ladder_step",
    "lifecycle_stage", "churn_risk", "p_alive", "expected_purchases_90d", "model"];
  let lastQuery = "";  // kept across re-renders (a change of dates redraws the page)

  function element(tag, text, className) {
    const made = document.createElement(tag);
    if (text !== undefined) made.textContent = text;
    if (className) made.className = className;
    return made;
  }

  function section(page, name, title, wide) {
    const article = element("article", undefined, wide ? "card wide" : "card");
    article.dataset.section = name;
    article.appendChild(element("h2", title));
    page.appendChild(article);
    return article;
  }

  function shown(value) {
    if (value === null || value === undefined || value === "") return "–";
    if (Array.isArray(value)) return value.length ? value.map(shown).join(", ") : "–";
    if (typeof value === "object") {
      return Object.entries(value).map(([k, v]) => `${k}: ${shown(v)}`).join("; ") || "–";
    }
    return String(value);
  }

  function fields(article, entries) {
    const list = element("dl");
    for (const [name, value] of entries) {
      list.append(element("dt", name), element("dd", shown(value)));
    }
    article.appendChild(list);
  }

  function searchBox(page) {
    const form = element("form", undefined, "customer-search");
    form.id = "customer-search";
    const input = element("input");
    input.id = "customer-query";
    input.type = "search";
    input.placeholder = "Email address or user id";
    input.value = lastQuery;
    input.required = true;
    form.append(input, element("button", "Find"));
    form.querySelector("button").type = "submit";
    page.appendChild(form);
    return form;
  }

  async function search(page, text) {
    lastQuery = text;
    const found = await getJson(API, { q: text });
    if (found.customers.length === 0) {
      showMessage(`No customer with the ${found.query.field === "email" ? "email address" :
        "user id"} ${found.query.value}. Customers appear once ingest has their events.`, false);
      return;
    }
    if (found.customers.length === 1) {
      await showCustomer(page, found.customers[0].customer_id);
      return;
    }
    const article = section(page, "matches", `${found.customers.length} customers match`, true);
    const list = element("ul", undefined, "matches");
    for (const match of found.customers) {
      const item = element("li");
      const pick = element("button", `${match.customer_id} · ${shown(match.email)} · ` +
        `user ${shown(match.user_id)} · ${shown(match.orders)} orders`);
      pick.type = "button";
      pick.dataset.customer = match.customer_id;
      pick.addEventListener("click", () => run(page, () => showCustomer(page, match.customer_id)));
      item.appendChild(pick);
      list.appendChild(item);
    }
    article.appendChild(list);
  }

  function historyChart(page, line) {
    const name = `customer.${line.dimension}`;
    const chart = card(page, name, HISTORY_TITLES[line.dimension]);
    if (line.points.length === 0) {
      chart.replaceWith(element("p", "No history yet: scoring records each change of the " +
        "customer's step and stage from their first scores on."));
      return;
    }
    chartIn(chart, name, {
      animation: false,
      grid: { left: 96, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time" },
      yAxis: { type: "category", data: line.segments },
      series: [{ name: line.dimension, type: "line", step: "end", data: line.points,
        symbolSize: 6 }],
    });
  }

  async function showTimeline(page, customerId) {
    const article = section(page, "timeline", "Timeline: touchpoints and emails", true);
    const answer = await getJson(`${API}/${encodeURIComponent(customerId)}/timeline`, {});
    for (const missing of answer.unavailable) {
      showMessage(`Emails are not shown: ${missing.message}.`, true);
    }
    if (answer.entries.length === 0) {
      article.appendChild(element("p", "Nothing yet: no touchpoint or email for this customer."));
      return;
    }
    const list = element("ol", undefined, "timeline");
    for (const entry of answer.entries) {
      const item = element("li", undefined, entry.kind);
      item.dataset.kind = entry.kind;
      const at = element("time", entry.at.replace("T", " ").slice(0, 19));
      at.dateTime = entry.at;
      item.append(at, element("strong", entry.title));
      if (entry.detail) item.append(` ${entry.detail}`);
      list.appendChild(item);
    }
    article.appendChild(list);
  }

  function actions(page, article, customerId) {
    const bar = element("div", undefined, "actions");
    const exported = element("a", "Export (JSON)");
    exported.id = "customer-export";
    exported.href = `${API}/${encodeURIComponent(customerId)}/export`;
    exported.download = `customer-${customerId}.json`;
    const erase = element("button", "Erase…", "danger");
    erase.id = "customer-erase";
    erase.type = "button";
    bar.append(exported, erase);
    article.appendChild(bar);

    const confirm = element("div", undefined, "actions");
    confirm.id = "erase-confirm";
    confirm.hidden = true;
    confirm.appendChild(element("p", "Erasure deletes the customer's profile, identities and " +
      "touchpoints, and tells scoring and notify to forget them (scores, history, emails). It " +
      `cannot be undone. Type the customer id (${customerId}) to confirm.`));
    const typed = element("input");
    typed.id = "erase-typed";
    const cancel = element("button", "Cancel");
    cancel.id = "erase-cancel";
    cancel.type = "button";
    const go = element("button", "Erase this customer", "danger");
    go.id = "erase-go";
    go.type = "button";
    go.disabled = true;
    confirm.append(typed, cancel, go);
    article.appendChild(confirm);

    erase.addEventListener("click", () => { confirm.hidden = false; typed.focus(); });
    cancel.addEventListener("click", () => { confirm.hidden = true; typed.value = ""; go.disabled = true; });
    typed.addEventListener("input", () => { go.disabled = typed.value.trim() !== customerId; });
    go.addEventListener("click", () => run(page, async () => {
      const erased = await getJson(`${API}/${encodeURIComponent(customerId)}`, {}, "DELETE");
      page.replaceChildren();
      searchBox(page).addEventListener("submit", (event) => submitted(page, event));
      showMessage(`Customer ${erased.erased} was erased: ${erased.touchpoints_deleted} ` +
        "touchpoints deleted; scoring and notify forget them as the news reaches them.", false);
    }));
  }

  async function showCustomer(page, customerId) {
    const data = await getJson(`${API}/${encodeURIComponent(customerId)}`, {});
    for (const old of page.querySelectorAll("article")) old.remove();
    const profile = data.profile;
    const identity = section(page, "identity", `Customer ${data.customer_id}`, true);
    identity.dataset.customer = data.customer_id;
    fields(identity, [["user id", profile.user_id], ["email", profile.email],
      ["anonymous ids", profile.anonymous_ids], ["time zone", profile.timezone],
      ["locale", profile.locale], ["updated", profile.updated_at]]);
    actions(page, identity, data.customer_id);
    for (const group of PROFILE_GROUPS) {
      fields(section(page, group, group[0].toUpperCase() + group.slice(1)),
        Object.entries(profile[group] || {}));
    }
    const scores = section(page, "scores", "Scores");
    if (data.scores) {
      fields(scores, SCORE_FIELDS.map((name) => [name.replaceAll("_", " "), data.scores[name]]));
    } else {
      scores.appendChild(element("p", "Not scored yet: scoring scores a customer once their " +
        "profile reaches it (a few seconds after their first event)."));
    }
    for (const line of data.history) historyChart(page, line);
    await showTimeline(page, data.customer_id);
  }

  // Runs a page action: its failure is the message, as a render's is.
  async function run(page, action) {
    showMessage("", false);
    page.dataset.state = "loading";
    try {
      await action();
      page.dataset.state = "ready";
    } catch (error) {
      page.dataset.state = "error";
      showMessage(`The data could not be loaded: ${error.message}`, true);
    }
  }

  function submitted(page, event) {
    event.preventDefault();
    const text = page.querySelector("#customer-query").value.trim();
    if (text) run(page, () => search(page, text));
  }

  async function render(page) {
    searchBox(page).addEventListener("submit", (event) => submitted(page, event));
    if (lastQuery) {
      await search(page, lastQuery);
    } else {
      showMessage("Find a customer by email address or user id.", false);
    }
  }

  window.Retain.page("customer", { title: "Customer", order: 70, render, uses: [] });
})();
