"""Checks the provider stand-ins' recorded traffic against the providers' own published,
machine-readable descriptions. `.ci/provider-artifacts` says what is checked and what is not;
`drive.py`, `dropbox_stone.py` and `graph.py` each say it for their provider."""
