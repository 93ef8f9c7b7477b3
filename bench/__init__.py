"""The benchmark of issue 2: the bridge on Redis, measured against references in one run.

``python bench/run.py`` runs it; README.md here says what each figure means.
"""
