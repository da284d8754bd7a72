"""Learning what works: split tests of a step's email, the nudge holdout, and click tracking.

assignment.py  which variant (and whether the holdout) an enrollment gets: a stable hash, pure
statistics.py  the 95% interval of a difference and the always-valid sequential decision, pure
report.py      the `drip stats --tests` report and the holdout's purchase rates, from the store
clicks.py      links through the signed redirect: placeholders per email, scanner rules,
               following a click (GET /r/{token}, drip/web/redirect.py)
"""
