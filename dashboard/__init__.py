"""The Looker Studio-style dashboard on the published marts: `app.py` (the Streamlit page), `queries.py`
(every query, pure functions of a connection), `ranges.py` (presets and comparison periods),
`scorecards.py` (the scorecards' text)."""
