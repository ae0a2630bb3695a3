"""HTML report, plots, timeline and failure visualisation."""
