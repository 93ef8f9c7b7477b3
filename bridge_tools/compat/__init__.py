"""Side-by-side compatibility checks: ``python -m bridge compat URL_A [URL_B]``.

A battery of scenarios (`scenarios`) drives one or two live endpoints of the v1beta2
API through Google's own Python client (`session`); what comes back is normalised
against each scenario's expectations (`rules`), compared structurally (`compare`),
excused only by the ledger's entries (`ledger`), and reported per scenario on the
terminal and as JSON (`report`). `runner` runs and judges; `command` is the CLI's body.
"""
