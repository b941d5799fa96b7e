"""Stage 5, figures: the shared slider and menu machinery (:mod:`.common`: plotly figures whose frames are
precomputed, so they work on a static page), then one module per family of figures."""
