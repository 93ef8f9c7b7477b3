"""The backend-level contract suite: the API's behaviours called on a `Backend` itself.

Each test runs once per backend (memory, redis, redis-cluster, cloudtasks on its fake:
``REGISTRY`` in `tests.support.harness`, with their marks and ids) and calls the verbs of
`backends.base` with its values; no HTTP, no JSON. The HTTP suite (``tests/test_*.py``)
drives the same behaviours through the served API with the Google client and keeps the
wire checks (encoding, validation, envelopes). So a new backend can be made to pass
here before any front serves it, and a failure says which layer broke: red here, the
backend; green here and red over HTTP, the front.

Adding a behaviour: write ``def test_<what_happens_as_a_sentence>(backend: Backend)`` in
the module of its verb (``test_tasks``: insert, get, list, delete, tombstones and ETAs;
``test_lease``; ``test_modify_lease``; ``test_queue_info``), with the short forms of
`tests.support.backend`. Take ``harness`` to move the backend's clock on
(``harness.advance(seconds)``) rather than sleeping, and ``open_harness(**options)`` for
a backend built with other ``from_url`` options. A backend that cannot show a behaviour
gets a row in KNOWN_DIFFERENCES.md naming the test; keep that test to the assertion that
differs.

Adding a backend: give it an entry in ``REGISTRY`` (`tests.support.harness`, whose
docstring says how); both suites then run on it.
"""
