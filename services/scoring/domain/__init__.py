"""The pure core of the scoring service: what a customer is worth and where they stand.

Nothing here performs I/O or imports a driver; the consumer, store and API wrap it:

- `summary`: a customer's purchases as the CLV models read them (frequency, recency, T,
  monetary value, in days);
- `clv`: the BG/NBD and Gamma-Gamma models, their maximum-likelihood fit, and predictions
  (expected purchases, probability alive, expected purchase value, lifetime value);
- `rfm`: recency, frequency and monetary scores by quintiles, and the eleven named segments;
- `standing`: value tier, loyalty ladder step and lifecycle stage;
- `score`: one customer's scores.v1 record from their profile, orders and the current model;
- `transitions`: the stage_changed and segment_changed events a new standing implies;
- `ledger`: the orders scoring keeps, with their lines (product, category, unit price);
- `refit`: the model, RFM bounds and top-tier bound a refit fixes; `recommend`: co-purchases
  (complementary products); `upgrades`: higher-priced products in the categories a customer buys;
- `channels`: channel economics (touched, converted, new customers, spend, CPA, CLV:CPA).
"""
