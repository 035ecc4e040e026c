"""Trust before go-live: the site's truth in, the agreement report, threshold calibration and the drift watch."""
