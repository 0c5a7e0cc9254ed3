"""The dashboard's figures, derived from the daily snapshot rows: one module per page, the
shared vocabulary (ranges, kinds of figure, trends) in `figures`."""
